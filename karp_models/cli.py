"""Command line: list datasets and models, download data, train and evaluate (how weights/ is made).

A leaf: nothing in karp imports it. Runs are built, described and saved by train/runs.py, the
same code the app's job queue uses.

    python -m karp_models datasets
    python -m karp_models download cifar10
    python -m karp_models models
    python -m karp_models train --model fast --dataset fashion-mnist --minutes 5 --out weights/x.safetensors
    python -m karp_models eval --weights weights/x.safetensors
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path

from karp_models import device as dev

# --- datasets


def cmd_datasets(a: argparse.Namespace) -> int:
    from karp_models import data

    print(data.format_status_table(data.statuses()))
    return 0


def cmd_download(a: argparse.Namespace) -> int:
    from karp_models import data

    try:
        st = data.download(a.name)
    except data.DatasetMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(data.format_status_table([st]))
    return 0


# --- models


def cmd_models(a: argparse.Namespace) -> int:
    from karp_models.models import REGISTRY
    from karp_models.train.runs import WEIGHTS_DIR, format_metrics, shipped_weights, weights_markdown

    if a.markdown:
        print(weights_markdown(shipped_weights()))
        return 0

    print("Registered models:")
    for s in REGISTRY.values():
        print(f"  {s.name:<9} {s.task:<5} presets: {', '.join(s.presets):<32} {s.description}")
    print(f"\nShipped weights ({WEIGHTS_DIR}):")
    rows = shipped_weights()
    if not rows:
        print("  none")
    for p, meta in rows:
        tr = meta.get("train", {})
        print(f"  {p.name:<34} {meta['model']:<8} {meta.get('dataset', '?'):<14} "
              f"{format_metrics(meta.get('metrics', {}))}; {tr.get('params', 0):,} params, "
              f"trained {tr.get('time_s', 0) / 60:.1f} min on {tr.get('device', '?')}")
    return 0


# --- train


def train_config_from_args(a: argparse.Namespace):
    from karp_models.train.trainer import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = {k: v for k, v in vars(a).items() if k in fields and v is not None}
    if a.no_augment:
        kw["augment"] = False
    if a.no_flip:
        kw["flip"] = False
    if a.steps is None and a.minutes is None:
        kw["minutes"] = 1.0
    return TrainConfig(**kw)


def cmd_train(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from karp_models import data
    from karp_models.models import REGISTRY
    from karp_models.train.checkpoints import CheckpointError, save_checkpoint
    from karp_models.train.runs import RunSpec, build_run, format_metrics, run_metadata
    from karp_models.train.tasks import final_metrics

    dev.set_threads()
    out = Path(a.out)
    try:  # everything a user can get wrong is said before any training
        if a.steps is not None and a.steps < 1:
            raise ValueError(f"--steps must be at least 1, got {a.steps}")
        if out.is_dir() or out.suffix != ".safetensors":
            raise ValueError(f"--out must name a .safetensors file, got {a.out}")
        try:
            overrides = json.loads(a.config) if a.config else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"--config is not JSON ({e}): e.g. '{{\"dropout\": 0.1}}'") from None
        out.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(out.parent, os.W_OK):
            raise ValueError(f"cannot write to {out.parent}")
        spec = RunSpec(model=a.model, dataset=a.dataset or getattr(REGISTRY.get(a.model), "default_dataset", ""),
                       config=train_config_from_args(a), preset=a.preset, overrides=overrides,
                       resume_from=a.resume, device=a.device, teacher=a.teacher)
        prepared = build_run(spec)
    except data.DatasetMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    trainer, cfg, ds = prepared.trainer, spec.config, prepared.data
    n_params = sum(p.numel() for p in trainer.model.parameters())
    print(f"{spec.model} ({prepared.preset}) on {spec.dataset}: {n_params:,} params; "
          f"{dev.describe_device(trainer.device)}")
    print(f"budget: {cfg.steps or '-'} steps / {cfg.minutes or '-'} min; {ds.source}")

    total = cfg.steps
    bar = tqdm(total=total, unit="step", dynamic_ncols=True,
               bar_format=None if total else "{n_fmt} steps {elapsed} {rate_fmt}{postfix}")
    for rec in trainer.run():
        bar.update(rec.step - bar.n)
        post = {"loss": f"{rec.train_loss:.4f}", "lr": f"{rec.lr:.2e}",
                rec.unit + "/s": f"{rec.throughput:,.0f}"}
        if rec.val_loss is not None:
            post["val"] = f"{rec.val_loss:.4f}"
            if rec.val_accuracy is not None:
                post["acc"] = f"{rec.val_accuracy:.2%}"
        bar.set_postfix(post, refresh=False)
    bar.close()

    # the run's final record scored the whole split: not again (no quick_stop here)
    metrics = final_metrics(trainer.task, trainer.model, trainer.device,
                            trainer.history[-1] if trainer.history else None)
    meta = run_metadata(spec, prepared, metrics,
                        command="python -m karp_models " + shlex.join(sys.argv[1:]))
    try:
        save_checkpoint(out, trainer.model, model_name=spec.model, meta=meta,
                        trainer=trainer if a.save_optimizer else None)
    except OSError as e:
        print(f"error: the trained model could not be saved to {out}: {e}", file=sys.stderr)
        return 1
    print(f"{trainer.task.eval_split}: {format_metrics(metrics)}; saved {out}")
    return 0


# --- eval


def cmd_eval(a: argparse.Namespace) -> int:
    from karp_models import data
    from karp_models.models import REGISTRY
    from karp_models.train.checkpoints import CheckpointError, load_checkpoint
    from karp_models.train.runs import format_metrics, load_dataset
    from karp_models.train.tasks import final_metrics, make_task

    try:
        ck = load_checkpoint(a.weights)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    dataset = ck.meta.get("dataset")
    try:
        ds = load_dataset(dataset, Path(a.weights).parent)   # karp's, or own classes kept beside the run
    except (data.DatasetMissing, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    device = dev.pick_device(a.device)
    dev.set_threads()
    model = ck.model.to(device)
    kind = REGISTRY[ck.model_name].task
    robust = ck.meta.get("robust")                  # the attack a robust accuracy was measured under
    if a.robust_eps is not None:
        if kind not in ("image", "finetune"):
            print(f"error: --robust-eps needs an image classifier; {ck.model_name} is not one",
                  file=sys.stderr)
            return 2
        from karp_models.train.runs import ROBUST_EVAL_ITEMS, ROBUST_EVAL_STEPS

        steps = a.robust_steps or ROBUST_EVAL_STEPS
        robust = {"epsilon": a.robust_eps, "steps": steps,
                  "step_size": round(2.5 * a.robust_eps / steps, 6), "items": ROBUST_EVAL_ITEMS}
    task = make_task(ds, model, augment=False, kind=kind, robust=robust)
    now = final_metrics(task, model, device)
    recorded = ck.meta.get("metrics", {})
    saved = {k: v for k, v in (ck.meta.get("robust") or {}).items()
             if k in ("epsilon", "steps", "step_size", "items")}
    if a.robust_eps is not None and robust != saved:
        recorded = {k: v for k, v in recorded.items() if "robust" not in k}  # another attack
    print(f"{Path(a.weights).name}: {ck.model_name} on {dataset} ({ds.source})")
    if robust:
        print(f"  robust accuracy: PGD, L-inf epsilon {robust['epsilon']:g}, {robust['steps']} steps "
              f"of {robust['step_size']:g}, on the first {robust.get('items', 'all')} test images")
    print(f"  recorded:   {format_metrics(recorded)}")
    print(f"  recomputed: {format_metrics(now)}")
    ok = all(abs(now[k] - recorded[k]) <= 2e-3 for k in now if k in recorded)
    print("  match" if ok else "  MISMATCH: the file's metrics are not reproduced")
    return 0 if ok else 3


# --- entry


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m karp_models", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("datasets", help="list datasets: status, source, split sizes").set_defaults(
        fn=cmd_datasets)
    p = sub.add_parser("download", help="download a dataset with torchvision (needs internet)")
    p.add_argument("name")
    p.set_defaults(fn=cmd_download)
    p = sub.add_parser("models", help="list registered models and shipped weights")
    p.add_argument("--markdown", action="store_true", help="only the shipped weights, as a table")
    p.set_defaults(fn=cmd_models)

    p = sub.add_parser("train", help="train a model and save a checkpoint")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", help="default: the model's default dataset")
    p.add_argument("--preset")
    p.add_argument("--config", help='JSON overrides of the model config, e.g. \'{"dropout": 0.1}\'')
    budget = p.add_argument_group("budget (at least one; both = whichever comes first)")
    budget.add_argument("--steps", type=int)
    budget.add_argument("--minutes", type=float)
    p.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["adamw", "sgd", "muon"],
                   help="muon: Muon on the hidden Linear matrices, AdamW on the rest")
    p.add_argument("--schedule", choices=["onecycle", "cosine", "constant"])
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--warmup", type=float)
    p.add_argument("--final-lr", dest="final_lr", type=float,
                   help="cosine schedule: the last lr as a fraction of --lr (default 0)")
    p.add_argument("--grad-clip", dest="grad_clip", type=float)
    p.add_argument("--label-smoothing", dest="label_smoothing", type=float)
    p.add_argument("--teacher", help="a trained checkpoint of the same dataset to distil from")
    p.add_argument("--distill-alpha", dest="distill_alpha", type=float,
                   help="weight of the teacher's term (default 0.5)")
    p.add_argument("--distill-temperature", dest="distill_temperature", type=float,
                   help="0: hard distillation on the teacher's top class (default); > 0: soft, at this T")
    p.add_argument("--eval-every", dest="eval_every", type=int)
    p.add_argument("--eval-batches", dest="eval_batches", type=int,
                   help="batches in each interval evaluation (default 20; the final one uses the whole split)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--shift", type=int, help="images: pixels of random shift when augmenting "
                   "(default: an eighth of the side, at most 4; 0: flips only)")
    p.add_argument("--no-flip", dest="no_flip", action="store_true",
                   help="images: no random horizontal flips when augmenting")
    adv = p.add_argument_group("adversarial training (images; Madry et al. 2018)")
    adv.add_argument("--adv-eps", dest="adv_eps", type=float,
                     help="train on PGD attacks within this L-inf radius of each image, pixels in "
                     "[0, 1] (default 0: off); the robust accuracy at it is measured and saved")
    adv.add_argument("--adv-steps", dest="adv_steps", type=int, help="PGD steps per batch (default 7)")
    adv.add_argument("--adv-step-size", dest="adv_step_size", type=float,
                     help="PGD step size (default 2.5 * eps / steps)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["cuda", "mps", "cpu"])
    p.add_argument("--resume", help="checkpoint saved with --save-optimizer to continue from")
    p.add_argument("--save-optimizer", action="store_true",
                   help="also store optimizer and RNG state so the run can be resumed")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("eval", help="recompute a checkpoint's test metrics from the file alone")
    p.add_argument("--weights", required=True)
    p.add_argument("--device", choices=["cuda", "mps", "cpu"])
    p.add_argument("--robust-eps", dest="robust_eps", type=float,
                   help="image models: also measure accuracy under a PGD attack of this L-inf "
                   "radius (a robust model's own attack is measured and checked without this)")
    p.add_argument("--robust-steps", dest="robust_steps", type=int, help="PGD steps (default 10)")
    p.set_defaults(fn=cmd_eval)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    return a.fn(a)
