"""The Train page's runs: the live view of this browser's jobs (redrawn once a second in a
fragment, scrolled into view when a run starts; runs a restart interrupted, with Resume), saving
a run with buttons that open it in the other pages, the saved runs, this browser's work on the
server (its disk use and the link that opens it elsewhere), the teacher's list of everyone's
interrupted runs, and the job limit of a shared server.

Pages redraw from JobStatus snapshots (Streamlit's multithreading guide, option 1); nothing here
touches a worker thread.
"""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from karp_models.i18n import N_, _, ngettext
from karp_models.models import REGISTRY
from karp_models.train import workspace
from karp_models.train.jobs import JobManager, JobStatus, QueueFull
from karp_models.train.runs import delete_run, list_runs, runs_dir, spec_from_run
from karp_models.ui import identity, style, teacher
from karp_models.ui import training as ui
from karp_models.ui.models import PICKED_AS, model_choices
from karp_models.ui.train_form import duration

SCROLL = "train_scroll"                # session flag: bring the live view into sight once
ANCHOR = "karp-live-run"

# page, button label (shown with _()), icon, the page's model picker key (its URL parameter); per family
OPEN_IN = {
    "image": [("pages/predict.py", N_("Open in Predict"), ":material/image_search:", "predict_model"),
              ("pages/explain.py", N_("Open in Explain"), ":material/lightbulb:", "explain_model"),
              ("pages/evaluate.py", N_("Open in Evaluate"), ":material/fact_check:", "evaluate_model")],
    "transformer": [("pages/generate.py", N_("Open in Generate text"), ":material/edit_note:",
                     "generate_model"),
                    ("pages/text_attention.py", N_("Open in GPT attention"), ":material/text_fields:",
                     "text_attention_model")],
    "rnn": [("pages/generate.py", N_("Open in Generate text"), ":material/edit_note:", "generate_model"),
            ("pages/rnn_neurons.py", N_("Open in RNN neurons"), ":material/neurology:",
             "rnn_neurons_model")],
    "generative": [("pages/generate_images.py", N_("Open in Generate images"), ":material/palette:",
                    "generate_images_model")],
    "captioning": [("pages/captioning.py", N_("Open in Image captioning"), ":material/subtitles:",
                    "captioning_model")],
}


def open_buttons(path: Path, model: str, container=st) -> None:
    """Buttons that open the saved run `path` in the pages that show its kind of model."""
    spec = REGISTRY.get(model)
    if spec is None:
        return
    group = "image" if PICKED_AS.get(spec.task) == "image" else spec.family   # a fine-tuned network too
    if group not in OPEN_IN:
        return
    cols = container.columns(len(OPEN_IN[group]))
    for col, (page, label, icon, key) in zip(cols, OPEN_IN[group]):
        col.page_link(page, label=_(label), icon=icon, query_params={key: path.stem}, width="stretch")


def remember_saved(model: str, path: Path) -> None:
    """The pickers of the pages that show this kind of model open with the run just saved (the
    list of models is read again: its cache would hide the new file for up to 10 s)."""
    task = REGISTRY[model].task
    st.session_state[f"karp_model_{PICKED_AS.get(task, task)}"] = str(path)
    model_choices.clear()


def scroll_into_view() -> None:
    """Scroll the page to the live view (once, after Start): the curves are below the form."""
    st.html(f"""<script>
    // again while the charts below it arrive: until then the page may be too short to scroll
    [0, 250, 600, 1200, 2000].forEach(ms => setTimeout(() => {{
      const el = window.parent.document.getElementById("{ANCHOR}") || document.getElementById("{ANCHOR}");
      if (el) el.scrollIntoView({{block: "start"}});
    }}, ms));
    </script>""", unsafe_allow_javascript=True)


# --- the live view


def _act(mgr: JobManager, method: str, job_id: str, owner: str | None) -> None:
    """A button's action on a job of `owner` (None: any, the teacher's list); a race (the job
    just finished or was forgotten) is a message."""
    try:
        getattr(mgr, method)(job_id, owner=owner)
    except (KeyError, ValueError) as e:
        st.session_state["train_problem"] = str(e).strip("'\"")


SAVE_POPOVER = "train_save_popover"     # session state: the Save popover is open


def _save_box(mgr: JobManager, cur: JobStatus, sid: str, container) -> None:
    if st.session_state.pop("train_save_close", False):    # saved: the confirmation is below
        st.session_state[SAVE_POPOVER] = False
    # a key and on_change make its open state one the page can set (Streamlit's st.popover docs)
    with container.popover(_("Save"), icon=":material/save:", width="stretch", key=SAVE_POPOVER,
                           on_change="rerun"):
        with st.form("train_save_form", border=False):
            suggested = f"{cur.spec.model}-{cur.spec.dataset}-lr{cur.spec.config.lr:g}"
            name = st.text_input(_("Save this run as"), value=suggested, key="train_save_name")
            if st.form_submit_button(_("Save run"), icon=":material/save:", type="primary"):
                try:
                    with st.spinner(_("Reading the run back from its autosave, evaluating it on "
                                      "the whole split and saving…") if cur.on_disk else
                                    _("Evaluating on the whole split and saving…")):
                        path = mgr.save(cur.job_id, name, owner=sid)
                    st.session_state["train_flash"] = str(path)
                    st.session_state["train_save_close"] = True
                    remember_saved(cur.spec.model, path)             # the other pages open with it
                    st.rerun()  # the saved-runs list below is outside this fragment
                except (ValueError, FileExistsError, OSError) as e:
                    st.error(str(e))


def took_text(r: JobStatus, estimates: dict[str, float]) -> str:
    """How long a finished run took, beside the estimate shown before it started."""
    said = estimates.get(r.job_id)
    if said:
        return _("Took {time} from Start to the final evaluation (estimated before Start: {estimate}).").format(
            time=duration(r.wall_s), estimate=duration(said))
    return _("Took {time} from Start to the final evaluation.").format(time=duration(r.wall_s))


def live_view(mgr: JobManager, sid: str, polling: bool) -> None:
    """This session's runs: choose one, stop / resume / save / remove it, its status, curves and
    preview. Call inside st.fragment(run_every=...)."""
    mgr.heartbeat(sid)
    runs = mgr.jobs(sid)
    st.html(f'<div id="{ANCHOR}"></div>')
    if not runs:
        st.info(_("No runs yet: choose a model and press **Start training**."))
        return
    if st.session_state.pop(SCROLL, False):
        scroll_into_view()
    by_id = {r.job_id: r for r in runs}
    cut = [r for r in runs if r.state == "stopped" and r.interrupted]
    if st.session_state.get("train_next_view") in by_id:  # a run just started: show it
        st.session_state["train_view"] = st.session_state.pop("train_next_view")
    if st.session_state.get("train_view") not in by_id:  # first look: an interrupted run first
        st.session_state["train_view"] = (cut or runs)[-1].job_id
    view_id = st.session_state["train_view"]
    if len(cut) > 1 or (cut and by_id[view_id] not in cut):
        interrupted_banner(mgr, sid, cut)
    pick, b0, b1, b2 = st.columns([4, 1.3, 1.3, 1.3], vertical_alignment="bottom")
    view = pick.selectbox(_("Run"), list(by_id), key="train_view", format_func=lambda j: by_id[j].label)
    cur = by_id[view]
    if cur.active:
        b0.button(_("Stop"), icon=":material/stop:", key="train_stop", on_click=_act,
                  args=(mgr, "stop", cur.job_id, sid), disabled=cur.stop_requested, width="stretch")
    elif cur.state == "stopped" or (cur.state == "error" and cur.on_disk):
        b0.button(_("Resume"), icon=":material/play_arrow:", key="train_resume", on_click=_act,
                  args=(mgr, "resume", cur.job_id, sid), width="stretch",
                  type="primary" if cur.interrupted or cur.paused else "secondary")
    if cur.state in ("stopped", "done") and cur.records:
        _save_box(mgr, cur, sid, b1)
    if not cur.active:
        b2.button(_("Remove"), icon=":material/delete:", key="train_remove", on_click=_act,
                  args=(mgr, "remove", cur.job_id, sid), width="stretch",
                  help=_("Forget this run and delete its autosave (runs saved under a name "
                         "stay)."))
    if "train_problem" in st.session_state:
        st.warning(st.session_state.pop("train_problem"))
    ui.render_status(cur, limit=mgr.limit)
    if cur.where:  # on a Ray cluster: which machine and process trains it
        st.caption((_("Trains on the cluster's machine {where}.") if cur.active else
                    _("Trained on the cluster's machine {where}.")).format(where=cur.where))
    note = ui.autosave_text(cur, mgr.autosave_s, mgr.autosave_steps, mgr.keep_done_s / 3600)
    if cur.autosave_problem and cur.autosaved_step is not None:
        st.warning(_("**Autosave is not working**, so a restart of the server would lose this "
                     "run's training since step {step:,}: {why}").format(
                         step=cur.autosaved_step, why=cur.autosave_problem),
                   icon=":material/save_as:")
    elif cur.autosave_problem:
        st.warning(_("**Autosave is not working**, so a restart of the server would lose this "
                     "run: {why}").format(why=cur.autosave_problem), icon=":material/save_as:")
    elif note:
        st.caption(note)
    if cur.state == "done":
        st.caption(took_text(cur, st.session_state.get("train_estimates", {})))
    if "train_flash" in st.session_state:
        path = Path(st.session_state.pop("train_flash"))
        st.success(_("Saved **{file}** in {folder}. Open it:").format(file=path.name, folder=path.parent))
        open_buttons(path, cur.spec.model)
    elif cur.saved:
        open_buttons(Path(cur.saved[-1]), cur.spec.model)

    shown = st.pills(_("Runs on the charts"), list(by_id), selection_mode="multi",
                     default=list(by_id), key=f"train_compare_{len(by_id)}",
                     format_func=lambda j: by_id[j].label) if len(by_id) > 1 else [cur.job_id]
    chosen = [by_id[j] for j in shown or [cur.job_id]]
    colors = ui.run_colors(runs)
    if cur.charts:
        task_charts(cur, chosen, colors)
    else:
        class_charts(cur, chosen, colors)
    if polling != any(r.active for r in runs):
        st.rerun()  # start or stop polling: run_every is fixed when the fragment is declared


def task_charts(cur: JobStatus, chosen: list[JobStatus], colors: dict[str, str]) -> None:
    """A run whose task names its curves (a GAN, a VAE): the first two side by side, the
    preview (a generator's grid), then the others with the learning rate."""
    charts = list(cur.charts)
    left, right = st.columns([3, 2])
    for col, i in zip((left, right), (0, 1)):
        if i < len(charts):
            with col:
                ui.show_chart(chosen, cur, charts[i], colors, key=f"train_chart_{i}")
    ui.render_preview(cur)
    rest = charts[2:]
    left, right = st.columns([3, 2])
    for i, chart in enumerate(rest):
        with left:
            ui.show_chart(chosen, cur, chart, colors, key=f"train_chart_{i + 2}")
    with right:
        curve_or_wait(chosen, "lr", colors, key="train_lr_chart")


def curve_or_wait(chosen: list[JobStatus], metric: str, colors: dict[str, str], key: str) -> None:
    """A curves chart, or, while none of its runs has a point yet, a box of the chart's height
    saying that nothing is measured yet (not an empty chart with a made-up axis)."""
    fig = ui.curves_figure(chosen, metric, colors)
    if any(t.x is not None and len(t.x) for t in fig.data):
        style.chart(fig, key=key)
        return
    title = fig.layout.title.text or ""
    with st.container(height=style.px(int(fig.layout.height or 300)), border=True,
                      vertical_alignment="center", horizontal_alignment="center", key=f"{key}_wait"):
        if any(r.active for r in chosen):                       # the words of a task's empty chart
            st.markdown(_("**{title}**: nothing measured yet.").format(title=title))
        else:
            st.markdown(_("**{title}**: not measured for this run.").format(title=title))


def class_charts(cur: JobStatus, chosen: list[JobStatus], colors: dict[str, str]) -> None:
    """The loss, accuracy and learning-rate curves, and the preview (a classifier's grid, a
    text sample)."""
    left, right = st.columns([3, 2])
    with left:
        curve_or_wait(chosen, "loss", colors, key="train_loss_chart")
    with right:
        curve_or_wait(chosen, "accuracy", colors, key="train_acc_chart")
    left, right = st.columns([3, 2])
    with left:
        ui.render_preview(cur)
    with right:
        curve_or_wait(chosen, "lr", colors, key="train_lr_chart")


def interrupted_banner(mgr: JobManager, sid: str, cut: list[JobStatus]) -> None:
    """Runs a restart of the server interrupted: how many, and Resume all."""
    c1, c2 = st.columns([4, 1.3], vertical_alignment="center")
    c1.warning(ngettext(
        "**The server stopped while {n} of your runs was training.** It is kept as its last "
        "autosave left it: choose it under Run and press Resume to continue exactly from there.",
        "**The server stopped while {n} of your runs were training.** Each is kept as its last "
        "autosave left it: choose one under Run and press Resume, or resume them all.",
        len(cut)).format(n=len(cut)), icon=":material/restart_alt:")
    if len(cut) > 1 and c2.button(_("Resume all"), icon=":material/play_arrow:",
                                  key="train_resume_all", width="stretch"):
        for r in cut:
            _act(mgr, "resume", r.job_id, sid)
        st.rerun()


# --- saved runs and the shared server


def saved_runs(mgr: JobManager, sid: str) -> None:
    """The runs folder: each saved run with Continue, Open in... and (unlocked) Delete."""
    with st.expander(_("Saved runs")):
        try:
            saved = list_runs()
            folder = runs_dir()
        except ValueError as e:
            st.error(str(e))
            saved, folder = [], None
        if not saved:
            st.caption(_("Nothing saved yet in {folder}. Stop or finish a run, then save it.").format(folder=folder))
        for path, meta in saved:
            tr = meta.get("train", {})
            cfg = tr.get("config", {})
            m = meta.get("metrics", {})
            acc = m.get("test_accuracy", m.get("val_accuracy"))
            loss = m.get("test_loss", m.get("val_loss"))
            cols = st.columns([3, 4, 1.5, 1.5, 1.3], vertical_alignment="center")
            owner = meta.get("owner")
            whose = (_("yours") if owner == sid else _("someone else's") if owner else
                     _("from the command line"))
            cols[0].markdown(f"**{path.stem}**  \n" + _("{model} on {dataset} · {whose}").format(
                model=meta.get("model"), dataset=meta.get("dataset"), whose=whose))
            budget = f"{cfg['steps']:,}" if cfg.get("steps") else "–"
            fd = m.get("test_fd")
            cols[1].markdown(
                _("step {step:,} of {budget} · loss {loss:.3f} · accuracy {acc:.1%}").format(
                    step=tr.get("steps", 0), budget=budget, loss=loss, acc=acc)
                if loss is not None and acc is not None else
                _("step {step} of {budget} · Frechet distance {fd:.1f}").format(
                    step=f"{tr.get('steps', 0):,}", budget=budget, fd=fd)
                if fd is not None else _("no metrics"))
            if cols[2].button(_("Continue"), key=f"train_continue_{path.stem}", width="stretch",
                              disabled=not teacher.unlocked(),
                              help=_("Train further from exactly where it was saved (weights, "
                                     "optimizer, data order). A finished run gets as many steps "
                                     "again, its learning-rate schedule stretched to the new "
                                     "length.")) and teacher.unlocked():
                more = max(cfg.get("steps") or 0, tr.get("steps", 0) + (cfg.get("steps") or 500))
                done = tr.get("steps", 0) >= (cfg.get("steps") or 0)
                try:
                    jid = mgr.submit(sid, spec_from_run(path, **({"steps": more} if done else {})))
                except QueueFull as e:
                    st.warning(_("Not started: {why}.").format(why=e))
                else:
                    st.session_state["train_next_view"] = jid
                    st.session_state[SCROLL] = True
                    st.rerun()
            with cols[3].popover(_("Open"), icon=":material/open_in_new:", width="stretch"):
                open_buttons(path, meta.get("model", ""), container=st.container())
            if may_delete(owner, sid):
                with cols[4].popover(_("Delete"), help=_("Delete this saved run's file for good."),
                                     width="stretch"):
                    if st.button(_("Delete {name} for good").format(name=path.stem), key=f"train_delete_{path.stem}",
                                 type="primary"):
                        try:
                            delete_run(path.stem)
                            st.session_state["train_flash_runs"] = _("Deleted {file}.").format(file=path.name)
                        except (ValueError, OSError) as e:
                            st.session_state["train_flash_runs"] = _("Not deleted: {why}").format(why=e)
                        st.rerun()
        if "train_flash_runs" in st.session_state:
            st.info(st.session_state.pop("train_flash_runs"))


def may_delete(owner: str | None, sid: str) -> bool:
    """Whether this tab may delete a saved run of `owner`: its own always; with teacher mode on,
    the unlocked teacher any; with it off, runs that belong to no one (the command line's)."""
    if owner == sid:
        return True
    if teacher.enabled():
        return teacher.unlocked()
    return owner is None


def your_work(mgr: JobManager, sid: str) -> None:
    """This browser's work on the server: what it uses of its disk quota, how often runs are
    autosaved, and the link that opens it in another browser."""
    with st.expander(_("Your work on this server"), icon=":material/cloud_done:"):
        try:
            use = workspace.usage(sid)
        except (ValueError, OSError) as e:
            st.error(str(e))
            return
        q = mgr.quota or workspace.Quota.from_env()
        parts = dict(used=workspace.fmt_bytes(use.mine), quota=workspace.fmt_bytes(q.per_owner),
                     saved=workspace.fmt_bytes(use.saved), auto=workspace.fmt_bytes(use.autosaves),
                     up=workspace.fmt_bytes(use.uploads))
        if q.per_owner:
            st.markdown(_("Your saved runs, autosaves and uploads use **{used}** of your {quota} "
                          "on this server: {saved} in saved runs, {auto} in autosaves, {up} in "
                          "your last upload.").format(**parts))
            st.progress(min(1.0, use.mine / q.per_owner))
        else:
            st.markdown(_("Your saved runs, autosaves and uploads use **{used}** on this server "
                          "(no limit is set): {saved} in saved runs, {auto} in autosaves, {up} in "
                          "your last upload.").format(**parts))
        if mgr.autosaving:
            every = (_("{n} s").format(n=f"{mgr.autosave_s:g}") if mgr.autosave_s else
                     _("{n} steps").format(n=f"{mgr.autosave_steps:,}"))
            st.caption(_("Running runs are autosaved every {every}, and when they stop or finish. A "
                         "refreshed tab finds them again, and after a restart of the server they "
                         "wait here to be resumed. Finished runs you do not save under a name "
                         "are cleaned up after {hours:g} hours.").format(
                             every=every, hours=mgr.keep_done_s / 3600))
        identity.another_browser_note()


def everyone_interrupted(mgr: JobManager, sid: str) -> None:
    """For the unlocked teacher: everyone's runs a restart interrupted, to resume them at once
    (their owners see them running when they come back)."""
    if not (teacher.enabled() and teacher.unlocked()):
        return
    cut = [r for r in mgr.jobs() if r.session_id != sid and r.state == "stopped"
           and (r.interrupted or r.paused)]
    if not cut:
        return
    with st.expander(ngettext("Teacher: {n} run of others was interrupted",
                              "Teacher: {n} runs of others were interrupted", len(cut)).format(
                                  n=len(cut)), icon=":material/restart_alt:"):
        st.caption(_("Runs the server's restart (or an absent owner) stopped, each kept at its "
                     "last autosave. Resuming one continues it for its owner; a run whose owner "
                     "has no tab open is paused again after a minute."))
        now = time.time()
        for r in cut:
            c = st.columns([4, 3, 1.3], vertical_alignment="center")
            c[0].markdown(f"**{r.label}**  \n" + _("browser {who}").format(who=r.session_id[:7]))
            c[1].markdown(_("step {step:,}, autosaved {when}").format(
                step=r.step, when=ui.ago(now - (r.autosaved_at or now))))
            c[2].button(_("Resume"), key=f"train_teacher_resume_{r.job_id}", width="stretch",
                        on_click=_act, args=(mgr, "resume", r.job_id, None))
        if len(cut) > 1 and st.button(_("Resume all"), key="train_teacher_resume_all",
                                      icon=":material/play_arrow:"):
            for r in cut:
                _act(mgr, "resume", r.job_id, None)
            st.rerun()
        if "train_problem" in st.session_state:
            st.warning(st.session_state.pop("train_problem"))


def job_limit(mgr: JobManager) -> None:
    """How many jobs run at once; changing it needs teacher mode (hidden when it is off)."""
    with st.expander(_("Shared server: training jobs at once")):
        st.markdown(ngettext("**{n}** training job runs at once per device; further jobs wait in a queue. On a "
                             "2-core CPU one at a time keeps the app responsive for everyone.",
                             "**{n}** training jobs run at once per device; further jobs wait in a queue. On a "
                             "2-core CPU one at a time keeps the app responsive for everyone.",
                             mgr.limit).format(n=mgr.limit))
        if not teacher.enabled():
            st.caption(_("The server's owner sets it when starting the app (KARP_JOB_LIMIT). With "
                         "a teacher password (KARP_TEACHER_PASSWORD) the teacher can change it here."))
            return
        if teacher.gate(_("change the job limit"), key="train_limit_teacher"):
            c = st.columns([2, 1, 3], vertical_alignment="bottom")
            new_limit = c[0].number_input(_("Jobs at once"), min_value=1, max_value=8,
                                          value=mgr.limit, key="train_job_limit")
            if c[1].button(_("Apply"), key="train_limit_apply") and teacher.unlocked():
                mgr.set_limit(int(new_limit))
                st.rerun()
