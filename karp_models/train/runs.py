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
import re
import shlex
import sys
import time
import unicodedata
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
from karp_models.train.trainer import TrainConfig, Trainer

WEIGHTS_DIR = Path(__file__).resolve().parent.parent.parent / "weights"
STALE_TEMP_S = 3600.0
MAX_NAME_BYTES = 160  # a run's file stem; with '.safetensors' and a save's temporary suffix < 255

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
    if spec.resume_from:
        load_trainer_state(spec.resume_from, trainer)
    return Prepared(trainer=trainer, data=ds, preset=spec.preset or reg.default_preset,
                    teacher_meta=teacher_meta)


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
             timelapse: list[tuple[int, dict[str, torch.Tensor]]] | None = None) -> Path:
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
              timelapse: list[tuple[int, dict[str, torch.Tensor]]] | None = None
              ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """What save_run writes, not yet encoded (checkpoints.checkpoint_parts; copy=True: a
    snapshot that training may go on from while another thread writes it)."""
    meta = run_metadata(spec, prepared, metrics)
    if snapshots:
        meta[snapshot_key] = previews.snapshots_meta(snapshots)
    meta.update(extra or {})
    lapse: dict[str, torch.Tensor] = {}
    if timelapse:
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


# --- the runs folder


def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """Where saved runs go: `path`, else $KARP_RUNS, else ./runs (never inside weights/)."""
    root = Path(path or os.environ.get("KARP_RUNS") or "runs").expanduser().resolve()
    weights = WEIGHTS_DIR.resolve()
    if root == weights or weights in root.parents:
        raise ValueError(_("the runs folder {folder} must be outside {weights} (shipped weights)").format(
            folder=root, weights=weights))
    return root


def safe_run_name(name: str, max_len: int = 80) -> str:
    """A file stem made from a person's run name that cannot leave the runs folder.

    Unicode is normalised (NFKC, so full-width '．．／' becomes '../' first); anything but
    letters, digits, '_', '.' and '-' becomes '-'; runs of separators collapse; leading and trailing
    dots and dashes go. Raises ValueError when nothing is left.
    """
    s = unicodedata.normalize("NFKC", str(name)).strip()
    s = re.sub(r"\.safetensors$", "", s, flags=re.IGNORECASE)
    s = re.sub(r"[^\w.-]+", "-", s)
    s = re.sub(r"[-.]*-[-.]*", "-", s)  # separators around a dash: one dash
    s = re.sub(r"\.{2,}", ".", s).strip("._-")[:max_len].strip("._-")
    while len(s.encode()) > MAX_NAME_BYTES:  # file systems count bytes: CJK takes 3 a character
        s = s[:-1].rstrip("._-")
    if not s:
        raise ValueError(_("{name} is not usable as a run name: use letters, digits, - or _").format(
            name=repr(name)))
    return s


def run_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """runs_dir(root) / <safe name>.safetensors, checked to lie directly in that folder."""
    base = runs_dir(root)
    path = (base / f"{safe_run_name(name)}.safetensors").resolve()
    if path.parent != base:
        raise ValueError(_("{name} would leave the runs folder").format(name=repr(name)))
    return path


def list_runs(root: str | os.PathLike | None = None) -> list[tuple[Path, dict]]:
    """(path, metadata) of every saved run, newest first; unreadable files are skipped."""
    base = runs_dir(root)
    _sweep_temporaries(base)
    out = []
    for p in sorted(base.glob("*.safetensors"), key=lambda q: q.stat().st_mtime, reverse=True):
        try:
            if p.is_symlink() and p.resolve().parent != base:  # planted, pointing elsewhere
                continue
            out.append((p, read_metadata(p)))
        except (CheckpointError, OSError):  # unreadable, or deleted by someone meanwhile
            continue
    return out


def _sweep_temporaries(base: Path, older_than_s: float = STALE_TEMP_S) -> None:
    """Remove what a save killed midway left behind (its `.<name>.safetensors.*.tmp` file);
    the run it was replacing is intact, since the write is atomic. Only old ones: a younger
    one may be a save in progress."""
    now = time.time()
    for t in base.glob(".*.safetensors.*.tmp"):
        try:
            if now - t.stat().st_mtime > older_than_s:
                t.unlink()
        except OSError:
            pass


def delete_run(name: str, root: str | os.PathLike | None = None) -> Path:
    """Delete the saved run `<name>.safetensors` from the runs folder; its former path.

    Only a regular file directly in that folder: a name with a path in it, a symlink (say, to a
    shipped weights file) or anything else is refused with ValueError.
    """
    base = runs_dir(root)
    stem = str(name)
    path = base / f"{stem}.safetensors"
    if (Path(stem).name != stem or stem in ("", ".", "..") or path.is_symlink()
            or not path.is_file() or path.resolve().parent != base):
        raise ValueError(_("no saved run named {name} in {folder}").format(name=repr(stem), folder=base))
    path.unlink()
    return path


# --- a person's own datasets, saved beside the runs that trained on them

DATASETS_FOLDER = "datasets"
CLASSES_FOLDER = "own-classes"


def datasets_dir(root: str | os.PathLike | None = None) -> Path:
    """Where own datasets are kept, in a model's input format: <runs folder>/datasets."""
    return runs_dir(root) / DATASETS_FOLDER


def classes_dir(root: str | os.PathLike | None = None) -> Path:
    """Where a person's classes are saved as they were uploaded, one folder per set in
    ImageFolder's layout (data.own.write_folder): <runs folder>/own-classes."""
    return runs_dir(root) / CLASSES_FOLDER


def save_dataset(data: Any, root: str | os.PathLike | None = None) -> Any:
    """Keep an image dataset that is not in the data registry (a person's own classes) in
    datasets_dir(root), so a run trained on it can be evaluated, explained and continued later.

    The file is named after data.name (made safe); the same images saved again reuse their file,
    other images under a taken name (or a registry dataset's name) get the next free 'name-2',
    'name-3', ... Returns the dataset under the name it is kept as (load_dataset finds it).
    Raises DiskFullError/OSError when the file cannot be written.
    """
    from karp_models.data import DATASETS
    from karp_models.data import own

    folder = datasets_dir(root)
    stem, digest = safe_run_name(data.name), own.fingerprint(data)
    for n in range(1, 1000):
        name = stem if n == 1 else f"{stem}-{n}"
        if name in DATASETS:
            continue
        path = folder / f"{name}.safetensors"
        if not path.exists():
            kept = dataclasses.replace(data, name=name)
            own.save(kept, path)
            return kept
        try:
            if own.fingerprint_of(path) == digest:
                return dataclasses.replace(data, name=name)
        except own.OwnDataError:                                  # damaged: leave it, take another name
            continue
    raise OSError(f"no free name for the dataset {stem!r} in {folder}")


def load_dataset(name: str, root: str | os.PathLike | None = None) -> Any:
    """A dataset by name: the data registry's (data.load), else one kept by save_dataset in
    datasets_dir(root) (then in the app's runs folder). Raises DatasetMissing (UnknownDataset)
    naming both places when it is in neither, data.own.OwnDataError for a damaged file."""
    from karp_models import data as datasets
    from karp_models.data import own

    if name in datasets.DATASETS:
        return datasets.load(name)
    places = [datasets_dir(root)] + ([datasets_dir()] if root is not None else [])
    for folder in places:
        path = folder / f"{name}.safetensors"
        if Path(name).name == name and path.is_file():
            return own.load(path)
    raise datasets.UnknownDataset(
        f"unknown dataset {name!r}: not one of karp's ({', '.join(datasets.DATASETS)}) and not "
        f"a set of your own classes in {places[0]}")


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
