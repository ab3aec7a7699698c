"""Runs on disk, shared by the command line and the app: what a run is (RunSpec), building it,
its metadata and the command that reproduces it, saving it, the runs folder (names, list,
delete), a person's own datasets saved beside the runs that trained on them, and the shipped
weights with their measured metrics.

A saved run is a karp checkpoint (train/checkpoints.py) whose metadata says how it was made, as
torchvision's weights carry their recipe and metrics in `meta`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from karp_models import device as dev
from karp_models.i18n import N_, _, join, using
from karp_models.train import previews
from karp_models.train import timelapse as tl
from karp_models.train.checkpoints import (CheckpointError, check_checkpoint, checkpoint_parts,
                                           load_checkpoint, load_trainer_state, read_metadata,
                                           write_checkpoint)
from karp_models.train.runsfolder import (CLASSES_FOLDER, DATASETS_FOLDER, MAX_NAME_BYTES,  # noqa: F401
                                          STALE_TEMP_S, WEIGHTS_DIR, classes_dir, datasets_dir, delete_run,
                                          list_runs, load_dataset, run_path, runs_dir, safe_run_name,
                                          save_dataset)
from karp_models.train.trainer import TrainConfig, Trainer


# --- what a run is, and building it


@dataclass(frozen=True)
class RunSpec:
    """One training run: registry model name, dataset name, preset and a TrainConfig.

    overrides: model config fields (as for build_for). resume_from: a checkpoint saved with its
    trainer state (a saved run) to continue instead of starting fresh. teacher: a trained
    checkpoint of the same dataset to distil from. preview_every: steps between live previews
    (None: the task's own). label: the run's name on charts. data: the dataset itself when it is
    not in the data registry (a person's own classes, data.own); `dataset` is then its name.
    """

    model: str
    dataset: str
    config: TrainConfig
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    resume_from: str | None = None
    device: str | None = None
    preview_every: int | None = None
    label: str = ""
    teacher: str | None = None
    data: Any = field(default=None, repr=False, compare=False)


@dataclass
class Prepared:
    """What a run trains: the Trainer (model, task, cfg, device inside), the dataset, the preset
    and, when distilling, the teacher's facts for the metadata."""

    trainer: Any
    data: Any
    preset: str | None = None
    teacher_meta: dict | None = None
    timelapse: tuple[list, int | None] | None = None  # continued: the earlier run's (snapshots, stride)


def load_teacher(path: str | os.PathLike, dataset: str, data: Any) -> tuple[torch.nn.Module, dict]:
    """A checkpoint to distil from, checked to be trained on `dataset` with the same classes;
    the model and its facts (file, model, sha256, metrics). Raises ValueError, CheckpointError."""
    ck = load_checkpoint(path)
    if ck.meta.get("dataset") != dataset:
        raise ValueError(f"{path} was trained on {ck.meta.get('dataset')!r}, not {dataset!r}")
    if list(ck.meta.get("classes", [])) != list(getattr(data, "classes", [])):
        raise ValueError(f"{path} has other classes than {dataset}")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return ck.model, {"file": Path(path).name, "model": ck.model_name, "sha256": digest,
                      "metrics": ck.meta.get("metrics", {})}


def build_run(spec: RunSpec) -> Prepared:
    """Load the data, build the model (or rebuild a saved run's), its task and a Trainer.

    Raises DatasetMissing (no data here), ValueError (unknown model, a model for another kind
    of data, an unusable teacher), CheckpointError (a damaged or forged run to resume) and
    imagenet.WeightsUnavailable (fine-tuning: the backbone's weights are not here).
    """
    from karp_models import data as datasets
    from karp_models.models import REGISTRY, build_for, from_config
    from karp_models.train.tasks import Distillation, make_task

    if spec.model not in REGISTRY:
        raise ValueError(f"unknown model {spec.model!r}; choose from {', '.join(REGISTRY)}")
    reg = REGISTRY[spec.model]
    own_root = Path(spec.resume_from).parent if spec.resume_from else None   # its data lies beside it
    ds = spec.data if spec.data is not None else load_dataset(spec.dataset, own_root)
    kind = datasets.DATASETS[spec.dataset].kind if spec.data is None and spec.dataset in datasets.DATASETS \
        else ("text" if hasattr(ds, "vocab") else "image")
    if kind != reg.data:
        a = "an" if reg.data[:1] in "aeiou" else "a"
        raise ValueError(f"{spec.model} is {a} {reg.data} model and {spec.dataset} is not "
                         f"{a} {reg.data} dataset")
    device = dev.pick_device(spec.device)
    torch.manual_seed(spec.config.seed)  # initial weights follow the seed
    if spec.resume_from:
        check_checkpoint(spec.resume_from)  # a forged config must not allocate a giant model
        saved = read_metadata(spec.resume_from)
        if (saved["model"], saved.get("dataset")) != (spec.model, spec.dataset):
            raise ValueError(f"{spec.resume_from} is {saved['model']} trained on "
                             f"{saved.get('dataset')!r}: it can only continue as that, not as "
                             f"{spec.model} on {spec.dataset!r}")
        model = from_config(spec.model, saved["config"]).to(device)
    else:
        model = build_for(spec.model, ds, preset=spec.preset, **spec.overrides).to(device)
    task = make_task(ds, model, augment=spec.config.augment, shift=spec.config.shift, kind=reg.task,
                     flip=spec.config.flip, robust=robust_attack(spec.config))
    if not spec.resume_from and hasattr(task, "setup"):
        task.setup(model)  # fine-tuning: the pretrained backbone
    teacher_meta = None
    if spec.teacher:
        teacher, teacher_meta = load_teacher(spec.teacher, spec.dataset, ds)
        task = Distillation(task, teacher)
    trainer = Trainer(model, task, spec.config, device)
    earlier = None
    if spec.resume_from:
        load_trainer_state(spec.resume_from, trainer)
        if getattr(task, "timelapse", False):  # its snapshots so far go on (train/timelapse.py)
            earlier = tl.read(spec.resume_from)
    return Prepared(trainer=trainer, data=ds, preset=spec.preset or reg.default_preset,
                    teacher_meta=teacher_meta, timelapse=earlier)


ROBUST_EVAL_STEPS = 10      # PGD steps of a robust model's evaluation attack (from the clean image)
ROBUST_EVAL_ITEMS = 1000    # test images it is measured on (the first ones: the same for every run)


def robust_attack(cfg: TrainConfig) -> dict | None:
    """The attack an adversarially trained run's robust accuracy is measured under: PGD at its
    training epsilon, ROBUST_EVAL_STEPS steps of 2.5 * epsilon / steps, from the clean image, on
    the first ROBUST_EVAL_ITEMS test images; None for a run trained without adversarial batches."""
    eps = float(getattr(cfg, "adv_eps", 0.0))
    if eps <= 0:
        return None
    return {"epsilon": eps, "steps": ROBUST_EVAL_STEPS,
            "step_size": round(2.5 * eps / ROBUST_EVAL_STEPS, 6), "items": ROBUST_EVAL_ITEMS}


# --- metadata and the command that reproduces a run


def run_metadata(spec: RunSpec, prepared: Prepared, metrics: dict,
                 command: str | None = None) -> dict:
    """A saved run's metadata: dataset, its source, the measured metrics, the training facts
    (steps, time, device, threads, parameters, config, torch, date, command) and what the task
    says a checkpoint needs (classes or vocabulary)."""
    trainer, ds = prepared.trainer, prepared.data
    last = trainer.history[-1] if getattr(trainer, "history", None) else None
    with using("en"):                     # a file's words in one language; the app translates them
        source, device = getattr(ds, "source", ""), dev.describe_device(trainer.device)
    meta = {
        "dataset": spec.dataset,
        "dataset_source": source,
        "metrics": metrics,
        "train": {
            "steps": trainer.step, "epochs": round(last.epoch, 3) if last else 0,
            "time_s": round(float(trainer.elapsed), 1), "device": device,
            "threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in trainer.model.parameters()), "preset": prepared.preset,
            "config": dataclasses.asdict(trainer.cfg), "torch": torch.__version__,
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
            "command": command or cli_command(spec),
        },
    }
    if prepared.teacher_meta is not None:
        meta["train"]["teacher"] = prepared.teacher_meta
    meta.update(getattr(trainer.task, "meta", dict)())
    return meta


def cli_command(spec: RunSpec) -> str:
    """The `python -m karp_models train` command that makes the same run (trained in the app)."""
    c, d = spec.config, TrainConfig(steps=1)
    args = ["train", "--model", spec.model, "--dataset", spec.dataset]
    if spec.preset:
        args += ["--preset", spec.preset]
    if spec.overrides:
        args += ["--config", json.dumps(spec.overrides)]
    if c.steps is not None:
        args += ["--steps", str(c.steps)]
    if c.minutes is not None:
        args += ["--minutes", f"{c.minutes:g}"]
    flags = {"batch_size": "--batch-size", "lr": "--lr", "optimizer": "--optimizer",
             "schedule": "--schedule", "weight_decay": "--weight-decay", "warmup": "--warmup",
             "final_lr": "--final-lr",
             "grad_clip": "--grad-clip", "label_smoothing": "--label-smoothing", "shift": "--shift",
             "adv_eps": "--adv-eps", "adv_steps": "--adv-steps", "adv_step_size": "--adv-step-size",
             "eval_every": "--eval-every", "eval_batches": "--eval-batches", "seed": "--seed"}
    for k, flag in flags.items():
        v = getattr(c, k)
        if v != getattr(d, k) and v is not None:
            args += [flag, f"{v:g}" if isinstance(v, float) else str(v)]
    if not c.augment:
        args.append("--no-augment")
    if not c.flip:
        args.append("--no-flip")
    return "python -m karp_models " + shlex.join(args) + "  # trained in the app"


def spec_from_run(path: str | os.PathLike, **config_changes: Any) -> RunSpec:
    """A RunSpec that continues a saved run (its model, dataset, preset and TrainConfig).

    config_changes: TrainConfig fields to change, e.g. steps=2000 to train further.
    """
    meta = read_metadata(path)
    tr = meta.get("train", {})
    cfg = TrainConfig(**{**tr.get("config", {}), **config_changes})
    return RunSpec(model=meta["model"], dataset=meta["dataset"], config=cfg,
                   preset=tr.get("preset"), resume_from=str(path),
                   label=f"{Path(path).stem} (continued)")


def save_run(path: str | os.PathLike, spec: RunSpec, prepared: Prepared, metrics: dict,
             snapshots: list[tuple[int, np.ndarray]] | None = None,
             snapshot_key: str = previews.Predictions.snapshot_key, *,
             extra: dict | None = None, before_write: Any = None,
             timelapse: tl.TimeLapse | list[tuple[int, dict[str, torch.Tensor]]] | None = None) -> Path:
    """Write the run (weights, metadata, trainer state to continue it, and the snapshots kept
    while it trained; timelapse: whole-model snapshots, train/timelapse.py) atomically to
    `path`. extra: more metadata entries (the owner's tag; an
    autosave's job facts). before_write(n_bytes) may refuse the write (a quota) before any byte
    is written. Raises DiskFullError (the previous file is intact). A person's own classes
    (spec.data) are kept beside the run (save_dataset) for Evaluate, Explain and resuming."""
    if spec.data is not None and hasattr(spec.data, "train_x") and hasattr(spec.data, "classes"):
        stored = save_dataset(spec.data, Path(path).parent)
        spec = dataclasses.replace(spec, dataset=stored.name)
    parts = run_parts(spec, prepared, metrics, snapshots, snapshot_key, extra=extra,
                      timelapse=timelapse)
    return write_checkpoint(path, *parts, before_write=before_write)


def run_parts(spec: RunSpec, prepared: Prepared, metrics: dict,
              snapshots: list[tuple[int, np.ndarray]] | None = None,
              snapshot_key: str = previews.Predictions.snapshot_key, *,
              extra: dict | None = None, copy: bool = False,
              timelapse: tl.TimeLapse | list[tuple[int, dict[str, torch.Tensor]]] | None = None
              ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """What save_run writes, not yet encoded (checkpoints.checkpoint_parts; copy=True: a
    snapshot that training may go on from while another thread writes it)."""
    meta = run_metadata(spec, prepared, metrics)
    if snapshots:
        meta[snapshot_key] = previews.snapshots_meta(snapshots)
    meta.update(extra or {})
    lapse: dict[str, torch.Tensor] = {}
    if timelapse and (timelapse.items if isinstance(timelapse, tl.TimeLapse) else timelapse):
        lapse, meta[tl.META_KEY] = tl.tensors(timelapse)
    model = prepared.trainer.model
    tensors, metadata = checkpoint_parts(model, model_name=spec.model, meta=meta,
                                         trainer=prepared.trainer, copy=copy)
    tensors.update(lapse)
    return tensors, metadata


def spec_meta(spec: RunSpec) -> dict:
    """A RunSpec as JSON for an autosave (its data, if not from the registry, is not kept)."""
    return {"model": spec.model, "dataset": spec.dataset, "preset": spec.preset,
            "overrides": dict(spec.overrides), "device": spec.device,
            "preview_every": spec.preview_every, "label": spec.label, "teacher": spec.teacher,
            "config": dataclasses.asdict(spec.config), "own_data": spec.data is not None}


def spec_from_meta(d: dict, resume_from: str | os.PathLike | None = None) -> RunSpec:
    """The RunSpec spec_meta() wrote, continuing from `resume_from`. Raises ValueError, TypeError
    for entries that do not make a RunSpec."""
    return RunSpec(model=str(d["model"]), dataset=str(d["dataset"]),
                   config=TrainConfig(**d["config"]), preset=d.get("preset"),
                   overrides=dict(d.get("overrides") or {}), device=d.get("device"),
                   preview_every=d.get("preview_every"), label=str(d.get("label") or ""),
                   teacher=d.get("teacher"),
                   resume_from=str(resume_from) if resume_from is not None else None)


# --- shipped weights


def shipped_weights(weights_dir: str | os.PathLike = WEIGHTS_DIR) -> list[tuple[Path, dict]]:
    """(path, metadata) of every checkpoint in weights_dir, sorted by name; unreadable files are
    reported on stderr and skipped."""
    out = []
    for p in sorted(Path(weights_dir).glob("*.safetensors")):
        try:
            out.append((p, read_metadata(p)))
        except CheckpointError as e:
            print(f"warning: {p.name}: {e}", file=sys.stderr)
    return out


def format_metrics(m: dict) -> str:
    """'test acc 91.21%, test loss 0.3163' (a robust model: 'robust acc 70.10%'; or the validation
    loss in nats per character; an agent: no loss, its mean reward first), then any other metric a task measures as 'name value' ('test fid 21.3')."""
    keys = [("test_accuracy", _("test acc {value:.2%}")), ("test_loss", _("test loss {value:.4f}")),
            ("test_robust_accuracy", _("robust acc {value:.2%}")),
            ("val_loss", _("val loss {value:.4f} nats/char")), ("val_accuracy", _("val acc {value:.2%}"))]
    if m.get("test_mean_return") is not None:       # an agent: its loss is only the negative reward
        keys = [(k, f) for k, f in keys if k != "test_loss"]
    known = [f.format(value=m[k]) for k, f in keys if m.get(k) is not None]
    other = [_metric(k, v) for k, v in m.items()
             if k not in dict(keys) and k != "test_loss" and isinstance(v, (int, float))]
    return join(known + other)                                    # "a, b" (Chinese: "a、b")


# the other numbers tasks measure (generators, captioners), by their key without the split; named
# in English by the key's own words, so the CLI and the README read as before
METRIC_NAMES = {"bleu4": N_("bleu4"), "cider": N_("cider"), "items_match": N_("items match"),
                "novel_accuracy": N_("novel accuracy"), "attention_on_item": N_("attention on item"),
                "attention_chance": N_("attention chance"), "d_loss": N_("d loss"), "g_loss": N_("g loss"),
                "fd": N_("fd"), "coverage": N_("coverage"), "confidence": N_("confidence"),
                "real_fd": N_("real fd"), "real_coverage": N_("real coverage"),
                "real_confidence": N_("real confidence"), "recon": N_("recon"), "kl": N_("kl"),
                "mean_return": N_("mean reward"), "return_std": N_("reward std"),
                "mean_length": N_("episode length"), "episodes": N_("episodes")}
SPLITS = {"test": N_("test {metric} {value:.4g}"), "val": N_("val {metric} {value:.4g}")}


def _metric(key: str, value: float) -> str:
    """'test fd 21.22': a measured number by its split and name, in the current language."""
    split, _sep, name = key.partition("_")
    if split not in SPLITS or not name:
        split, name = "", key
    words = _(METRIC_NAMES[name]) if name in METRIC_NAMES else name.replace("_", " ")
    return (_(SPLITS[split]) if split else "{metric} {value:.4g}").format(metric=words, value=value)


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
