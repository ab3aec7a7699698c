"""Command line: list datasets and models, download data, train and evaluate (how weights/ is made).

    python -m karp_models datasets
    python -m karp_models download cifar10
    python -m karp_models models
    python -m karp_models train --model fast --dataset fashion-mnist --minutes 5 --out weights/x.safetensors
    python -m karp_models eval --weights weights/x.safetensors
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import shlex
import sys
from pathlib import Path

import torch

from karp_models import device as dev

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

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


def shipped_weights(weights_dir: Path = WEIGHTS_DIR) -> list[tuple[Path, dict]]:
    """(path, metadata) of every checkpoint in weights_dir, sorted by name; unreadable files are
    reported on stderr and skipped."""
    from karp_models.train.checkpoints import CheckpointError, read_metadata

    out = []
    for p in sorted(Path(weights_dir).glob("*.safetensors")):
        try:
            out.append((p, read_metadata(p)))
        except CheckpointError as e:
            print(f"warning: {p.name}: {e}", file=sys.stderr)
    return out


def format_metrics(m: dict) -> str:
    keys = [("test_accuracy", "test acc {:.2%}"), ("test_loss", "test loss {:.4f}"),
            ("val_loss", "val loss {:.4f} nats/char"), ("val_accuracy", "val acc {:.2%}")]
    return ", ".join(f.format(m[k]) for k, f in keys if m.get(k) is not None)


def weights_markdown(rows: list[tuple[Path, dict]]) -> str:
    """The README's table of shipped weights, from the files' own metadata."""
    out = ["| file | model | dataset | measured quality | params | training |",
           "|---|---|---|---|---:|---|"]
    for p, meta in rows:
        tr = meta.get("train", {})
        out.append(f"| `{p.name}` | {meta['model']} ({tr.get('preset', '')}) | {meta.get('dataset')} | "
                   f"{format_metrics(meta.get('metrics', {}))} | {tr.get('params', 0):,} | "
                   f"{tr.get('steps', 0):,} steps, {tr.get('time_s', 0) / 60:.1f} min on "
                   f"{tr.get('device', '?')} |")
    return "\n".join(out)


def cmd_models(a: argparse.Namespace) -> int:
    from karp_models.models import REGISTRY

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
    if a.steps is None and a.minutes is None:
        kw["minutes"] = 1.0
    return TrainConfig(**kw)


def load_teacher(path: str, dataset: str, ds) -> tuple[torch.nn.Module, dict]:
    """A checkpoint to distil from, checked to be trained on `dataset` with the same classes."""
    import hashlib

    from karp_models.train.checkpoints import load_checkpoint

    ck = load_checkpoint(path)
    if ck.meta.get("dataset") != dataset:
        raise ValueError(f"{path} was trained on {ck.meta.get('dataset')!r}, not {dataset!r}")
    if list(ck.meta.get("classes", [])) != list(getattr(ds, "classes", [])):
        raise ValueError(f"{path} has other classes than {dataset}")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return ck.model, {"file": Path(path).name, "model": ck.model_name, "sha256": digest,
                      "metrics": ck.meta.get("metrics", {})}


def cmd_train(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from karp_models import data
    from karp_models.models import REGISTRY, build_for
    from karp_models.train.checkpoints import CheckpointError, load_trainer_state, save_checkpoint
    from karp_models.train.tasks import make_task
    from karp_models.train.trainer import Trainer

    if a.model not in REGISTRY:
        print(f"error: unknown model {a.model!r}; choose from {', '.join(REGISTRY)}", file=sys.stderr)
        return 2
    spec = REGISTRY[a.model]
    dataset = a.dataset or spec.default_dataset
    try:
        ds = data.load(dataset)
    except data.DatasetMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if (spec.task == "text") != hasattr(ds, "vocab"):
        print(f"error: {a.model} is a {spec.task} model and {dataset} is not a {spec.task} dataset",
              file=sys.stderr)
        return 2
    device = dev.pick_device(a.device)
    threads = dev.set_threads()
    torch.manual_seed(a.seed or 0)
    overrides = json.loads(a.config) if a.config else {}
    model = build_for(a.model, ds, preset=a.preset, **overrides).to(device)
    cfg = train_config_from_args(a)
    task = make_task(ds, model, augment=cfg.augment, shift=cfg.shift)
    teacher, teacher_meta = None, None
    if a.teacher:
        try:
            teacher, teacher_meta = load_teacher(a.teacher, dataset, ds)
        except (CheckpointError, ValueError) as e:
            print(f"error: teacher: {e}", file=sys.stderr)
            return 2
    trainer = Trainer(model, task, cfg, device, teacher=teacher)
    if a.resume:
        load_trainer_state(a.resume, trainer)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{a.model} ({a.preset or spec.default_preset}) on {dataset}: {n_params:,} params; "
          f"{dev.describe_device(device)}; {threads} threads")
    print(f"budget: {cfg.steps or '-'} steps / {cfg.minutes or '-'} min; {ds.source}")

    total = cfg.steps
    bar = tqdm(total=total, unit="step", dynamic_ncols=True,
               bar_format=None if total else "{n_fmt} steps {elapsed} {rate_fmt}{postfix}")
    last = None
    for rec in trainer.run():
        bar.update(rec.step - bar.n)
        post = {"loss": f"{rec.train_loss:.4f}", "lr": f"{rec.lr:.2e}",
                rec.unit + "/s": f"{rec.throughput:,.0f}"}
        if rec.val_loss is not None:
            post["val"] = f"{rec.val_loss:.4f}"
            if rec.val_accuracy is not None:
                post["acc"] = f"{rec.val_accuracy:.2%}"
        bar.set_postfix(post, refresh=False)
        last = rec
    bar.close()

    model.eval()
    split = "validation" if spec.task == "text" else "test"
    m = task.evaluate(model, device, split=split)
    metrics = ({"val_loss": m["loss"], "val_accuracy": m["accuracy"]} if spec.task == "text"
               else {"test_loss": m["loss"], "test_accuracy": m["accuracy"]})
    meta = {
        "dataset": dataset,
        "dataset_source": ds.source,
        "metrics": metrics,
        "train": {
            "steps": last.step if last else 0, "epochs": round(last.epoch, 3) if last else 0,
            "time_s": round(trainer.elapsed, 1), "device": dev.describe_device(device),
            "threads": threads, "params": n_params, "preset": a.preset or spec.default_preset,
            "config": dataclasses.asdict(cfg), "torch": torch.__version__,
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
            "command": "python -m karp_models " + shlex.join(sys.argv[1:]),
        },
    }
    if teacher_meta is not None:
        meta["train"]["teacher"] = teacher_meta
    meta["classes" if spec.task == "image" else "vocab"] = list(
        ds.classes if spec.task == "image" else ds.vocab)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model, model_name=a.model, meta=meta,
                    trainer=trainer if a.save_optimizer else None)
    print(f"{split}: {format_metrics(metrics)}; saved {out}")
    return 0


# --- eval


def cmd_eval(a: argparse.Namespace) -> int:
    from karp_models import data
    from karp_models.train.checkpoints import CheckpointError, load_checkpoint
    from karp_models.train.tasks import make_task

    try:
        ck = load_checkpoint(a.weights)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    dataset = ck.meta.get("dataset")
    try:
        ds = data.load(dataset)
    except data.DatasetMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    device = dev.pick_device(a.device)
    dev.set_threads()
    model = ck.model.to(device)
    task = make_task(ds, model, augment=False)
    text = hasattr(ds, "vocab")
    m = task.evaluate(model, device, split="validation" if text else "test")
    now = ({"val_loss": m["loss"], "val_accuracy": m["accuracy"]} if text
           else {"test_loss": m["loss"], "test_accuracy": m["accuracy"]})
    recorded = ck.meta.get("metrics", {})
    print(f"{Path(a.weights).name}: {ck.model_name} on {dataset} ({ds.source})")
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
    p.add_argument("--optimizer", choices=["adamw", "sgd"])
    p.add_argument("--schedule", choices=["onecycle", "cosine", "constant"])
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--warmup", type=float)
    p.add_argument("--grad-clip", dest="grad_clip", type=float)
    p.add_argument("--label-smoothing", dest="label_smoothing", type=float)
    p.add_argument("--teacher", help="a trained checkpoint of the same dataset to distil from")
    p.add_argument("--distill-alpha", dest="distill_alpha", type=float,
                   help="weight of the teacher's term (default 0.5)")
    p.add_argument("--distill-temperature", dest="distill_temperature", type=float,
                   help="0: hard distillation on the teacher's top class (default); > 0: soft, at this T")
    p.add_argument("--eval-every", dest="eval_every", type=int)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--shift", type=int, help="images: pixels of random shift when augmenting "
                   "(default: an eighth of the side, at most 4; 0: flips only)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["cuda", "mps", "cpu"])
    p.add_argument("--resume", help="checkpoint saved with --save-optimizer to continue from")
    p.add_argument("--save-optimizer", action="store_true",
                   help="also store optimizer and RNG state so the run can be resumed")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("eval", help="recompute a checkpoint's test metrics from the file alone")
    p.add_argument("--weights", required=True)
    p.add_argument("--device", choices=["cuda", "mps", "cpu"])
    p.set_defaults(fn=cmd_eval)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    return a.fn(a)
