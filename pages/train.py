"""Train: pick a task, data, model and hyperparameters, start, and watch the network learn live;
stop, resume, save under a name, and overlay runs to compare them (issue 4).

Training runs in karp_models.train.jobs (a background job); this page only redraws snapshots,
once a second, in a fragment (Streamlit's multithreading guide, option 1).
"""
import streamlit as st

from karp_models.models import REGISTRY
from karp_models.train.jobs import QueueFull
from karp_models.train.runs import RunSpec, delete_run, list_runs, runs_dir, spec_from_run
from karp_models.train.trainer import OPTIMIZERS, SCHEDULES, TrainConfig
from karp_models.ui import style, teacher
from karp_models.ui import training as ui
from karp_models.ui.loaders import dataset_statuses
from karp_models.ui.widgets import device_text

TASKS = {"Image classification": "image", "Character language model": "text"}
DEFAULT_MODEL = {"image": "fast", "text": "gpt"}
# Per model: hyperparameters (and a lighter preset or dataset where the default is slow) that
# draw a good curve in under a minute with one torch thread of a 2-core laptop CPU.
RECIPES = {
    "classic": dict(lr=1e-3, batch_size=64, steps=500),
    "fast": dict(lr=4e-3, batch_size=128, steps=300),
    "tinyvgg": dict(lr=3e-3, batch_size=64, steps=1000),
    "resnet18": dict(lr=2e-3, batch_size=64, steps=150, dataset="digits"),
    "vit": dict(lr=3e-3, batch_size=128, steps=1500, preset="tiny"),
    "rnn": dict(lr=3e-3, batch_size=32, steps=2000, preset="small"),
    "lstm": dict(lr=3e-3, batch_size=32, steps=1500, preset="small"),
    "gru": dict(lr=3e-3, batch_size=32, steps=1200, preset="small"),
    "gpt": dict(lr=3e-3, batch_size=32, steps=1500, preset="nano"),
}
LRS = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 4e-3, 6e-3, 1e-2, 3e-2, 1e-1]
BATCHES = [16, 32, 64, 128, 256, 512]

st.title("Train")
st.caption("Pick data, a model and its hyperparameters, then watch it learn: the curves redraw "
           "every second while training runs in the background.")
style.projector_css()
mgr, sid = ui.manager(), ui.session_id()
mgr.heartbeat(sid)
teacher.status_line()

# --- choices


def apply_recipe() -> None:
    """Model changed: its hyperparameter defaults."""
    model_name = st.session_state["train_model"]
    r = RECIPES.get(model_name, dict(lr=3e-3, batch_size=64, steps=300))
    st.session_state["train_lr"] = min(LRS, key=lambda v: abs(v - r["lr"]))
    st.session_state["train_batch"] = r["batch_size"]
    st.session_state["train_steps"] = r["steps"]
    st.session_state["train_preset"] = r.get("preset") or REGISTRY[model_name].default_preset
    if r.get("dataset"):  # else the person's dataset choice stays
        st.session_state["train_dataset"] = r["dataset"]


def task_changed() -> None:
    kind = TASKS[st.session_state["train_task"]]
    st.session_state["train_model"] = DEFAULT_MODEL[kind]
    apply_recipe()


if "train_model" not in st.session_state:
    st.session_state["train_model"] = DEFAULT_MODEL["image"]
    apply_recipe()

task_label = st.radio("Task", list(TASKS), horizontal=True, key="train_task",
                      on_change=task_changed)
kind = TASKS[task_label]
statuses = {s.name: s for s in dataset_statuses() if s.kind == kind}
models = [n for n, s in REGISTRY.items() if s.task == kind]
if st.session_state.get("train_model") not in models:
    st.session_state["train_model"] = models[0]
    apply_recipe()

c1, c2, c3 = st.columns(3)
model = c2.selectbox("Model", models, key="train_model", on_change=apply_recipe,
                     format_func=lambda n: f"{n}: {REGISTRY[n].description}")
spec = REGISTRY[model]
names = list(statuses)
default_ds = spec.default_dataset if spec.default_dataset in names else names[0]
if st.session_state.get("train_dataset") not in names:
    st.session_state["train_dataset"] = default_ds
dataset = c1.selectbox("Dataset", names, key="train_dataset",
                       format_func=lambda n: n if statuses[n].available else f"{n} (missing)")
if st.session_state.get("train_preset") not in spec.presets:
    st.session_state["train_preset"] = spec.default_preset
preset = c3.selectbox("Preset (model size)", list(spec.presets), key="train_preset")

h = st.columns([2, 2, 1.2, 1.2, 1.4])
lr = h[0].select_slider("Learning rate", LRS, key="train_lr", format_func=lambda v: f"{v:g}")
batch = h[1].select_slider("Batch size", BATCHES, key="train_batch")
steps = h[2].number_input("Steps", min_value=20, max_value=50_000, step=50, key="train_steps")
optimizer = h[3].selectbox("Optimizer", OPTIMIZERS, key="train_optimizer")
augment = h[4].toggle("Augment", value=True, key="train_augment", disabled=kind == "text",
                      help="Random shifts (and flips where they keep the label) of training images.")
with st.expander("More settings"):
    a = st.columns(3)
    schedule = a[0].selectbox("Learning-rate schedule", SCHEDULES, key="train_schedule")
    seed = a[1].number_input("Seed", min_value=0, max_value=10_000, value=0, key="train_seed")
    label = a[2].text_input("Run name on the charts (optional)", key="train_label")

ds_status = statuses[dataset]
if not ds_status.available:
    st.error(f"**{dataset}** is not on this machine. {ds_status.note}")
    st.code(ds_status.how_to_get, language="bash")

go_col, dev_col = st.columns([1, 4], vertical_alignment="center")
start = go_col.button("▶ Start training", type="primary", key="train_start",
                      disabled=not ds_status.available or not teacher.unlocked(), width="stretch")
dev_col.markdown(f"Trains on **{device_text()}**")
teacher.gate("start training", key="train_teacher")

if start and teacher.unlocked():
    every = max(20, int(steps) // 15)  # about 15 validation points per run
    cfg = TrainConfig(steps=int(steps), lr=lr, batch_size=batch, optimizer=optimizer,
                      schedule=schedule, augment=bool(augment), seed=int(seed),
                      eval_every=every, eval_batches=4 if kind == "text" else max(2, 1024 // batch))
    try:
        jid = mgr.submit(sid, RunSpec(model=model, dataset=dataset, preset=preset, config=cfg,
                                      label=label.strip()))
        st.session_state["train_next_view"] = jid
    except QueueFull as e:
        st.warning(f"Not started: {e}.")

# --- live view (a fragment that polls while something is queued or running)


def act(method: str, job_id: str) -> None:
    """A button's action on a job; a race (the job just finished or was forgotten) is a message."""
    try:
        getattr(mgr, method)(job_id)
    except (KeyError, ValueError) as e:
        st.session_state["train_problem"] = str(e).strip("'\"")


polling = any(r.active for r in mgr.jobs(sid))


def live_view() -> None:
    mgr.heartbeat(sid)
    runs = mgr.jobs(sid)
    if not runs:
        st.info("No runs yet: choose a model and press **Start training**.")
        return
    by_id = {r.job_id: r for r in runs}
    if st.session_state.get("train_next_view") in by_id:  # a run just started: show it
        st.session_state["train_view"] = st.session_state.pop("train_next_view")
    if st.session_state.get("train_view") not in by_id:
        st.session_state["train_view"] = runs[-1].job_id
    st.divider()
    pick, buttons = st.columns([3, 2], vertical_alignment="bottom")
    view = pick.selectbox("Run", list(by_id), key="train_view",
                          format_func=lambda j: by_id[j].label)
    cur = by_id[view]
    b = buttons.columns(2)
    if cur.active:
        b[0].button("■ Stop", key="train_stop", on_click=act, args=("stop", cur.job_id),
                    disabled=cur.stop_requested, width="stretch")
    elif cur.state == "stopped":
        b[0].button("▶ Resume", key="train_resume", on_click=act, args=("resume", cur.job_id),
                    width="stretch")
    if not cur.active:
        b[1].button("Remove", key="train_remove", on_click=act, args=("remove", cur.job_id),
                    width="stretch", help="Forget this run (saved files stay).")
    if "train_problem" in st.session_state:
        st.warning(st.session_state.pop("train_problem"))
    ui.render_status(cur, limit=mgr.limit)

    shown = st.pills("Runs on the charts", list(by_id), selection_mode="multi",
                     default=list(by_id), key=f"train_compare_{len(by_id)}",
                     format_func=lambda j: by_id[j].label) if len(by_id) > 1 else [cur.job_id]
    chosen = [by_id[j] for j in shown or [cur.job_id]]
    colors = ui.run_colors(runs)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(ui.curves_figure(chosen, "loss", colors), width="stretch",
                        key="train_loss_chart")
    with right:
        st.plotly_chart(ui.curves_figure(chosen, "accuracy", colors), width="stretch",
                        key="train_acc_chart")
    left, right = st.columns([3, 2])
    with left:
        ui.render_preview(cur)
    with right:
        st.plotly_chart(ui.curves_figure(chosen, "lr", colors), width="stretch",
                        key="train_lr_chart")
        if cur.state in ("stopped", "done") and cur.records:
            with st.form("train_save_form", border=True):
                suggested = f"{cur.spec.model}-{cur.spec.dataset}-lr{cur.spec.config.lr:g}"
                name = st.text_input("Save this run as", value=suggested, key="train_save_name")
                if st.form_submit_button("💾 Save run"):
                    try:
                        with st.spinner("Evaluating on the whole split and saving…"):
                            path = mgr.save(cur.job_id, name)
                        st.session_state["train_flash"] = f"Saved **{path.name}** in {path.parent}"
                        st.rerun()  # the saved-runs list below is outside this fragment
                    except (ValueError, FileExistsError, OSError) as e:
                        st.error(str(e))
            if "train_flash" in st.session_state:
                st.success(st.session_state.pop("train_flash"))
        for p in cur.saved:
            st.caption(f"Saved as `{p}`: open it in the other views.")
    if polling != any(r.active for r in runs):
        st.rerun()  # start or stop polling: run_every is fixed when the fragment is declared


st.fragment(live_view, run_every=1.0 if polling else None)()

# --- saved runs

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
        cols = st.columns([3, 4, 1.4, 1.2], vertical_alignment="center")
        cols[0].markdown(f"**{path.stem}**  \n{meta.get('model')} on {meta.get('dataset')}")
        budget = f"{cfg['steps']:,}" if cfg.get("steps") else "–"
        cols[1].markdown(
            f"step {tr.get('steps', 0):,} of {budget} · loss {loss:.3f} · accuracy {acc:.1%}"
            if loss is not None and acc is not None else "no metrics")
        if cols[2].button("Continue", key=f"train_continue_{path.stem}",
                          disabled=not teacher.unlocked(),
                          help="Train further from exactly where it was saved (weights, optimizer, "
                               "data order). A finished run gets as many steps again, its "
                               "learning-rate schedule stretched to the new length.") \
                and teacher.unlocked():
            more = max(cfg.get("steps") or 0, tr.get("steps", 0) + (cfg.get("steps") or 500))
            done = tr.get("steps", 0) >= (cfg.get("steps") or 0)
            try:
                jid = mgr.submit(sid, spec_from_run(path, **({"steps": more} if done else {})))
            except QueueFull as e:
                st.warning(f"Not started: {e}.")
            else:
                st.session_state["train_next_view"] = jid
                st.rerun()
        if teacher.unlocked():
            with cols[3].popover("Delete", help="Delete this saved run's file for good."):
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

# --- the shared server (teacher mode guards it when a password is set)

with st.expander("Shared server: training jobs at once"):
    st.markdown(f"**{mgr.limit}** training job{'s run' if mgr.limit > 1 else ' runs'} at once "
                f"per device; further jobs wait in a queue. On a 2-core CPU one at a time keeps "
                f"the app responsive for everyone.")
    if teacher.gate("change the job limit", key="train_limit_teacher"):
        c = st.columns([2, 1, 3], vertical_alignment="bottom")
        new_limit = c[0].number_input("Jobs at once", min_value=1, max_value=8, value=mgr.limit,
                                      key="train_job_limit")
        if c[1].button("Apply", key="train_limit_apply") and teacher.unlocked():
            mgr.set_limit(int(new_limit))
            st.rerun()
