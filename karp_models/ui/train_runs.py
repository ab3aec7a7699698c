"""The Train page's runs: the live view of this session's jobs (redrawn once a second in a
fragment, scrolled into view when a run starts), saving a run with buttons that open it in the
other pages, the saved runs, and the job limit of a shared server.

Pages redraw from JobStatus snapshots (Streamlit's multithreading guide, option 1); nothing here
touches a worker thread.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from karp_models.models import REGISTRY
from karp_models.train.jobs import JobManager, JobStatus, QueueFull
from karp_models.train.runs import delete_run, list_runs, runs_dir, spec_from_run
from karp_models.ui import style, teacher
from karp_models.ui import training as ui
from karp_models.ui.models import PICKED_AS, model_choices
from karp_models.ui.train_form import duration

SCROLL = "train_scroll"                # session flag: bring the live view into sight once
ANCHOR = "karp-live-run"

# page, button label, icon, the page's model picker key (its URL parameter); per model family
OPEN_IN = {
    "image": [("pages/predict.py", "Open in Predict", ":material/image_search:", "predict_model"),
              ("pages/explain.py", "Open in Explain", ":material/lightbulb:", "explain_model"),
              ("pages/evaluate.py", "Open in Evaluate", ":material/fact_check:", "evaluate_model")],
    "transformer": [("pages/generate.py", "Open in Generate text", ":material/edit_note:",
                     "generate_model"),
                    ("pages/text_attention.py", "Open in GPT attention", ":material/text_fields:",
                     "text_attention_model")],
    "rnn": [("pages/generate.py", "Open in Generate text", ":material/edit_note:", "generate_model"),
            ("pages/rnn_neurons.py", "Open in RNN neurons", ":material/neurology:",
             "rnn_neurons_model")],
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
        col.page_link(page, label=label, icon=icon, query_params={key: path.stem}, width="stretch")


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


def _act(mgr: JobManager, method: str, job_id: str) -> None:
    """A button's action on a job; a race (the job just finished or was forgotten) is a message."""
    try:
        getattr(mgr, method)(job_id)
    except (KeyError, ValueError) as e:
        st.session_state["train_problem"] = str(e).strip("'\"")


def _save_box(mgr: JobManager, cur: JobStatus, container) -> None:
    with container.popover("Save", icon=":material/save:", width="stretch"):
        with st.form("train_save_form", border=False):
            suggested = f"{cur.spec.model}-{cur.spec.dataset}-lr{cur.spec.config.lr:g}"
            name = st.text_input("Save this run as", value=suggested, key="train_save_name")
            if st.form_submit_button("Save run", icon=":material/save:", type="primary"):
                try:
                    with st.spinner("Evaluating on the whole split and saving…"):
                        path = mgr.save(cur.job_id, name)
                    st.session_state["train_flash"] = str(path)
                    remember_saved(cur.spec.model, path)             # the other pages open with it
                    st.rerun()  # the saved-runs list below is outside this fragment
                except (ValueError, FileExistsError, OSError) as e:
                    st.error(str(e))


def took_text(r: JobStatus, estimates: dict[str, float]) -> str:
    """How long a finished run took, beside the estimate shown before it started."""
    said = estimates.get(r.job_id)
    est = f" (estimated before Start: {duration(said)})" if said else ""
    return f"Took {duration(r.wall_s)} from Start to the final evaluation{est}."


def live_view(mgr: JobManager, sid: str, polling: bool) -> None:
    """This session's runs: choose one, stop / resume / save / remove it, its status, curves and
    preview. Call inside st.fragment(run_every=...)."""
    mgr.heartbeat(sid)
    runs = mgr.jobs(sid)
    st.html(f'<div id="{ANCHOR}"></div>')
    if not runs:
        st.info("No runs yet: choose a model and press **Start training**.")
        return
    if st.session_state.pop(SCROLL, False):
        scroll_into_view()
    by_id = {r.job_id: r for r in runs}
    if st.session_state.get("train_next_view") in by_id:  # a run just started: show it
        st.session_state["train_view"] = st.session_state.pop("train_next_view")
    if st.session_state.get("train_view") not in by_id:
        st.session_state["train_view"] = runs[-1].job_id
    pick, b0, b1, b2 = st.columns([4, 1.3, 1.3, 1.3], vertical_alignment="bottom")
    view = pick.selectbox("Run", list(by_id), key="train_view", format_func=lambda j: by_id[j].label)
    cur = by_id[view]
    if cur.active:
        b0.button("Stop", icon=":material/stop:", key="train_stop", on_click=_act,
                  args=(mgr, "stop", cur.job_id), disabled=cur.stop_requested, width="stretch")
    elif cur.state == "stopped":
        b0.button("Resume", icon=":material/play_arrow:", key="train_resume", on_click=_act,
                  args=(mgr, "resume", cur.job_id), width="stretch")
    if cur.state in ("stopped", "done") and cur.records:
        _save_box(mgr, cur, b1)
    if not cur.active:
        b2.button("Remove", icon=":material/delete:", key="train_remove", on_click=_act,
                  args=(mgr, "remove", cur.job_id), width="stretch",
                  help="Forget this run (saved files stay).")
    if "train_problem" in st.session_state:
        st.warning(st.session_state.pop("train_problem"))
    ui.render_status(cur, limit=mgr.limit)
    if cur.state == "done":
        st.caption(took_text(cur, st.session_state.get("train_estimates", {})))
    if "train_flash" in st.session_state:
        path = Path(st.session_state.pop("train_flash"))
        st.success(f"Saved **{path.name}** in {path.parent}. Open it:")
        open_buttons(path, cur.spec.model)
    elif cur.saved:
        open_buttons(Path(cur.saved[-1]), cur.spec.model)

    shown = st.pills("Runs on the charts", list(by_id), selection_mode="multi",
                     default=list(by_id), key=f"train_compare_{len(by_id)}",
                     format_func=lambda j: by_id[j].label) if len(by_id) > 1 else [cur.job_id]
    chosen = [by_id[j] for j in shown or [cur.job_id]]
    colors = ui.run_colors(runs)
    left, right = st.columns([3, 2])
    with left:
        style.chart(ui.curves_figure(chosen, "loss", colors), key="train_loss_chart")
    with right:
        style.chart(ui.curves_figure(chosen, "accuracy", colors), key="train_acc_chart")
    left, right = st.columns([3, 2])
    with left:
        ui.render_preview(cur)
    with right:
        style.chart(ui.curves_figure(chosen, "lr", colors), key="train_lr_chart")
    if polling != any(r.active for r in runs):
        st.rerun()  # start or stop polling: run_every is fixed when the fragment is declared


# --- saved runs and the shared server


def saved_runs(mgr: JobManager, sid: str) -> None:
    """The runs folder: each saved run with Continue, Open in... and (unlocked) Delete."""
    with st.expander("Saved runs"):
        try:
            saved = list_runs()
            folder = runs_dir()
        except ValueError as e:
            st.error(str(e))
            saved, folder = [], None
        if not saved:
            st.caption(f"Nothing saved yet in {folder}. Stop or finish a run, then save it.")
        for path, meta in saved:
            tr = meta.get("train", {})
            cfg = tr.get("config", {})
            m = meta.get("metrics", {})
            acc = m.get("test_accuracy", m.get("val_accuracy"))
            loss = m.get("test_loss", m.get("val_loss"))
            cols = st.columns([3, 4, 1.5, 1.5, 1.3], vertical_alignment="center")
            cols[0].markdown(f"**{path.stem}**  \n{meta.get('model')} on {meta.get('dataset')}")
            budget = f"{cfg['steps']:,}" if cfg.get("steps") else "–"
            cols[1].markdown(
                f"step {tr.get('steps', 0):,} of {budget} · loss {loss:.3f} · accuracy {acc:.1%}"
                if loss is not None and acc is not None else "no metrics")
            if cols[2].button("Continue", key=f"train_continue_{path.stem}", width="stretch",
                              disabled=not teacher.unlocked(),
                              help="Train further from exactly where it was saved (weights, "
                                   "optimizer, data order). A finished run gets as many steps "
                                   "again, its learning-rate schedule stretched to the new "
                                   "length.") and teacher.unlocked():
                more = max(cfg.get("steps") or 0, tr.get("steps", 0) + (cfg.get("steps") or 500))
                done = tr.get("steps", 0) >= (cfg.get("steps") or 0)
                try:
                    jid = mgr.submit(sid, spec_from_run(path, **({"steps": more} if done else {})))
                except QueueFull as e:
                    st.warning(f"Not started: {e}.")
                else:
                    st.session_state["train_next_view"] = jid
                    st.session_state[SCROLL] = True
                    st.rerun()
            with cols[3].popover("Open", icon=":material/open_in_new:", width="stretch"):
                open_buttons(path, meta.get("model", ""), container=st.container())
            if teacher.unlocked():
                with cols[4].popover("Delete", help="Delete this saved run's file for good.",
                                     width="stretch"):
                    if st.button(f"Delete {path.stem} for good", key=f"train_delete_{path.stem}",
                                 type="primary"):
                        try:
                            delete_run(path.stem)
                            st.session_state["train_flash_runs"] = f"Deleted {path.name}."
                        except (ValueError, OSError) as e:
                            st.session_state["train_flash_runs"] = f"Not deleted: {e}"
                        st.rerun()
        if "train_flash_runs" in st.session_state:
            st.info(st.session_state.pop("train_flash_runs"))


def job_limit(mgr: JobManager) -> None:
    """How many jobs run at once; changing it needs teacher mode (hidden when it is off)."""
    with st.expander("Shared server: training jobs at once"):
        st.markdown(f"**{mgr.limit}** training job{'s run' if mgr.limit > 1 else ' runs'} at once "
                    f"per device; further jobs wait in a queue. On a 2-core CPU one at a time "
                    f"keeps the app responsive for everyone.")
        if not teacher.enabled():
            st.caption("The server's owner sets it when starting the app (KARP_JOB_LIMIT). With "
                       "a teacher password (KARP_TEACHER_PASSWORD) the teacher can change it here.")
            return
        if teacher.gate("change the job limit", key="train_limit_teacher"):
            c = st.columns([2, 1, 3], vertical_alignment="bottom")
            new_limit = c[0].number_input("Jobs at once", min_value=1, max_value=8,
                                          value=mgr.limit, key="train_job_limit")
            if c[1].button("Apply", key="train_limit_apply") and teacher.unlocked():
                mgr.set_limit(int(new_limit))
                st.rerun()
