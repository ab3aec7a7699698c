"""Train: pick a task, data, model and hyperparameters, start, and watch the network learn live;
stop, resume, save under a name (then open it in the other pages), and overlay runs to compare
them (issue 4; issue 16: the model in plain words with its measured time, the live view scrolled
into sight on Start, the page's settings in its link; issue 18: runs belong to this browser, are
autosaved, and wait here to be resumed after a restart of the server).

Training runs in karp_models.train.jobs (a background job); this page only redraws snapshots,
once a second, in a fragment (Streamlit's multithreading guide, option 1).
"""
import streamlit as st

from karp_models.i18n import _
from karp_models.train.jobs import QueueFull
from karp_models.ui import recipe_checks, style, teacher
from karp_models.ui import train_form as form
from karp_models.ui import train_runs as runs
from karp_models.ui import training as ui
from karp_models.ui.compute import param_count, run_timing
from karp_models.ui.widgets import cluster_notice, device_text

st.title(_("Train"))
st.caption(_("Pick data, a model and its hyperparameters, then watch it learn: the curves redraw "
             "every second while training runs in the background."))
style.projector_css()
mgr, sid = ui.manager(), ui.session_id()
mgr.heartbeat(sid)
teacher.status_line()
cluster_notice()                        # a training cluster that cannot be used, said once

choice = form.settings(param_count)

go_col, about_col = st.columns([1, 3], vertical_alignment="center")
start = go_col.button(_("Start training"), icon=":material/play_arrow:", type="primary",
                      key="train_start", width="stretch",
                      disabled=not choice.available or not teacher.unlocked())
about = about_col.empty()               # filled last: measuring waits for the rest of the page
teacher.gate(_("start training"), key="train_teacher")

if start and teacher.unlocked():
    try:
        jid = mgr.submit(sid, choice.spec())
    except QueueFull as e:
        st.warning(_("Not started: {why}.").format(why=e))
    else:
        st.session_state["train_next_view"] = jid
        st.session_state[runs.SCROLL] = True
        t = run_timing(choice.model, choice.dataset, choice.preset, choice.config.batch_size,
                       measure=False, adv_eps=choice.config.adv_eps)
        if t is not None:                # what the page said before Start, to compare at the end
            st.session_state.setdefault("train_estimates", {})[jid] = t.seconds(choice.config)

polling = any(r.active for r in mgr.jobs(sid))
st.fragment(runs.live_view, run_every=1.0 if polling else None)(mgr, sid, polling)
runs.everyone_interrupted(mgr, sid)     # the unlocked teacher: others' runs a restart stopped
runs.saved_runs(mgr, sid)
recipe_checks.section(choice, mgr.jobs(sid))   # collapsed: initial loss, one-batch overfit, update ratios
runs.your_work(mgr, sid)
runs.job_limit(mgr)

busy = any(r.state == "running" for r in mgr.jobs())
with about_col:
    with st.spinner(_("Timing a few training steps of this model on this machine…")):
        about.markdown(form.estimate_text(choice, device_text(), busy=busy))
