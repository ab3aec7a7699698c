"""What live training in the app costs: the same small run trained directly with the Trainer (as
`python -m karp_models train` does) and through the JobManager while a poller takes a snapshot
and builds the page's figures once a second (as the Train page does). Issue 4: goal <= 1.10.

    python bench/ui_overhead.py          # prints `ui_overhead: X (goal <= 1.10)`

Both runs use the same torch thread count (the app's: KARP_THREADS, else all cores but one),
the same seed and the same data already in memory; each is timed from building the model to
the end of the last evaluation. With repeats > 1 the fastest of each kind is compared (the
machine may be shared).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from karp_models import data  # noqa: E402
from karp_models import device as dev  # noqa: E402
from karp_models.models import build_for  # noqa: E402
from karp_models.train.jobs import JobManager  # noqa: E402
from karp_models.train.previews import Predictions  # noqa: E402
from karp_models.train.runs import RunSpec  # noqa: E402
from karp_models.train.tasks import make_task  # noqa: E402
from karp_models.train.trainer import TrainConfig, Trainer  # noqa: E402

MODEL, DATASET = "fast", "fashion-mnist"
RECIPE = dict(steps=300, batch_size=128, lr=4e-3, eval_every=50, eval_batches=8)

# --- the two ways of training


def same_threads() -> int:
    """Pin KARP_THREADS so the CLI-style run and the app's worker (set_threads(for_app=True))
    use the same count; torch's setting is process-wide."""
    os.environ.setdefault("KARP_THREADS", str(dev.app_threads()))
    return dev.set_threads(for_app=True)


def cli_seconds(cfg: TrainConfig, model_name: str = MODEL, dataset: str = DATASET
                ) -> tuple[float, float]:
    """(wall, process CPU) seconds of the command line's loop: build, Trainer.run() to the end."""
    ds = data.load(dataset)
    device = dev.pick_device()
    c0, t0 = time.process_time(), time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = build_for(model_name, ds).to(device)
    task = make_task(ds, model, augment=cfg.augment, shift=cfg.shift)
    for _ in Trainer(model, task, cfg, device).run():
        pass
    return time.perf_counter() - t0, time.process_time() - c0


def ui_seconds(cfg: TrainConfig, model_name: str = MODEL, dataset: str = DATASET
               ) -> tuple[float, float]:
    """(wall, process CPU) seconds through the JobManager while a page-like poller takes a
    snapshot and draws the page's figures once a second."""
    import plotly.io
    import plotly.tools

    from karp_models.ui import training as ui  # the page's figure builders (no st.* calls)

    data.load(dataset)
    mgr = JobManager(grace_s=3600)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        jid = mgr.submit("bench", RunSpec(model=model_name, dataset=dataset, config=cfg))
        while True:
            snap = mgr.status(jid)
            figs = [ui.curves_figure([snap], m) for m in ("loss", "accuracy", "lr")]
            if isinstance(snap.preview, Predictions):
                figs.append(ui.prediction_grid(snap.preview, jid))
            for f in figs:  # what st.plotly_chart does with each: validate, then serialise
                plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(
                    f, validate_figure=True), validate=False)
            if not snap.active:
                break
            mgr.wait(jid, timeout=1.0)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        if snap.state != "done":
            raise RuntimeError(f"the app's run ended {snap.state}: {snap.error}")
        return elapsed, cpu
    finally:
        mgr.shutdown()


def measure(repeats: int = 2, **recipe) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each run, the two kinds alternating (cli, ui, ui, cli, ...)."""
    same_threads()
    cfg = TrainConfig(**{**RECIPE, **recipe})
    data.load(DATASET)
    out: dict[str, list[tuple[float, float]]] = {"cli": [], "ui": []}
    for i in range(repeats):
        for kind in (("cli", "ui") if i % 2 == 0 else ("ui", "cli")):
            out[kind].append((cli_seconds if kind == "cli" else ui_seconds)(cfg))
    return out


def ui_overhead_ratio(repeats: int = 2, **recipe) -> tuple[float, float, float]:
    """(ui_s / cli_s, cli_s, ui_s) for the same run: wall times, the fastest of `repeats` each."""
    m = measure(repeats, **recipe)
    cli_s, ui_s = min(w for w, _ in m["cli"]), min(w for w, _ in m["ui"])
    return ui_s / cli_s, cli_s, ui_s


if __name__ == "__main__":
    m = measure(int(os.environ.get("KARP_BENCH_REPEATS", "2")))
    (cli_s, cli_cpu), (ui_s, ui_cpu) = min(m["cli"]), min(m["ui"])
    print(f"# {MODEL} on {DATASET}, {RECIPE['steps']} steps, {torch.get_num_threads()} torch "
          f"thread(s): command line {cli_s:.1f} s wall / {cli_cpu:.1f} s CPU, app with a live "
          f"page {ui_s:.1f} s wall / {ui_cpu:.1f} s CPU (fastest of {len(m['cli'])} each; all "
          f"wall times: cli {[round(w, 1) for w, _ in m['cli']]}, ui "
          f"{[round(w, 1) for w, _ in m['ui']]})")
    print(f"ui_overhead: {ui_s / cli_s:.3f} (goal <= 1.10)")
