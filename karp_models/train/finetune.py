"""Fine-tuning's backbones: which pretrained networks there are (karp's trained CNNs, shipped or
saved; torchvision's ImageNet ResNet-18, MobileNetV3-Large and VGG16), the input each takes,
and a FineTune model with the backbone's weights loaded.

karp backbones are read from their checkpoint (strictly, never unpickled); torchvision's from
the torch hub cache by karp_models.imagenet (torchvision's own get_state_dict; a download only
when asked for). The model's config says where the weights came from (file and SHA-256, or the
weights' name); the fine-tuned checkpoint holds every weight itself, so reloading it needs
neither. A run on the job queue loads them in the fine-tuning task's setup (tasks/finetune.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from karp_models import imagenet
from karp_models.i18n import _
from karp_models.data.own import InputFormat
from karp_models.imagenet import WeightsUnavailable
from karp_models.models.cnn import CNN
from karp_models.models.finetune import MODES, TORCHVISION_ARCHS, Block, FineTune, FineTuneConfig, blocks
from karp_models.models.registry import REGISTRY
from karp_models.train.checkpoints import CheckpointError, load_checkpoint, read_metadata
from karp_models.train.runs import WEIGHTS_DIR, RunSpec, format_metrics, list_runs, shipped_weights
from karp_models.train.trainer import TrainConfig

__all__ = ["Backbone", "WeightsUnavailable", "karp_backbone", "torchvision_backbone", "backbones",
           "input_format", "backbone_state", "build_model", "Budget", "BUDGETS", "MODE_LR", "mode_spec",
           "layers_of"]

# ---------------------------------------------------------------------------- what can be a backbone


@dataclass(frozen=True)
class Backbone:
    """A pretrained network to fine-tune.

    key: 'torchvision:<arch>' or a karp checkpoint's path. fields: the FineTuneConfig fields it
    fixes (source, arch, weights, weights_sha256, backbone_config, input_style): a RunSpec's
    overrides. available: its weights are on this machine (how_to_get says how otherwise).
    """

    key: str
    title: str
    source: str                                   # 'karp' | 'torchvision'
    fields: dict[str, Any] = field(hash=False)
    trained_on: str = ""                          # 'fashion-mnist', 'ImageNet-1K'
    metrics: str = ""                             # its measured quality, in words
    available: bool = True
    how_to_get: str = ""
    size_mb: float = 0.0

    def config(self, n_classes: int, mode: str = "head", **overrides: Any) -> FineTuneConfig:
        """The FineTuneConfig of this backbone with a head for n_classes."""
        return FineTuneConfig(**{**self.fields, "n_classes": n_classes, "mode": mode, **overrides})

    @property
    def input(self) -> InputFormat:
        """How a picture becomes this backbone's input (own.build's fmt)."""
        return input_format(self.config(2))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def karp_backbone(path: str | os.PathLike) -> Backbone:
    """A karp CNN checkpoint (shipped or a saved run) as a backbone; reads its metadata only.
    Raises CheckpointError (unreadable) or ValueError (not a CNN)."""
    path = Path(path)
    meta = read_metadata(path)
    spec = REGISTRY.get(meta["model"])
    if spec is None or spec.model_class is not CNN:
        raise ValueError(f"{path.name} is a {meta['model']!r} model; a backbone is one of karp's CNNs "
                         f"({', '.join(n for n, s in REGISTRY.items() if s.model_class is CNN)})")
    cfg = dict(meta["config"])
    dataset = meta.get("dataset", spec.default_dataset)
    style = InputFormat.for_dataset(dataset, cfg.get("in_channels", 1), cfg.get("image_size", 28)).style
    fields = {"source": "karp", "arch": cfg.get("arch", "classic"), "weights": str(path.resolve()),
              "weights_sha256": _sha256(path), "backbone_config": cfg, "input_style": style}
    return Backbone(key=str(path), title=f"{path.stem} ({meta['model']} on {dataset})", source="karp",
                    fields=fields, trained_on=dataset, metrics=format_metrics(meta.get("metrics", {})),
                    size_mb=path.stat().st_size / 2**20)


def torchvision_backbone(arch: str) -> Backbone:
    """torchvision's ImageNet model `arch` (TORCHVISION_ARCHS) as a backbone; available when its
    weights are in the torch hub cache."""
    if arch not in TORCHVISION_ARCHS:
        raise KeyError(f"unknown torchvision backbone {arch!r}; choose from {', '.join(TORCHVISION_ARCHS)}")
    a = imagenet.ARCHS[arch]
    acc = a.weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
    cached = imagenet.is_cached(arch)
    fields = {"source": "torchvision", "arch": arch, "weights": f"{type(a.weights).__name__}.{a.weights.name}",
              "input_style": "imagenet"}
    return Backbone(key=f"torchvision:{arch}", title=f"{a.title} (ImageNet)", source="torchvision",
                    fields=fields, trained_on="ImageNet-1K",
                    metrics=f"ImageNet top-1 {acc:.1f}%" if acc is not None else "",
                    available=cached, how_to_get="" if cached else imagenet.how_to_get(arch),
                    size_mb=imagenet.size_mb(arch))


def backbones(runs_root: str | os.PathLike | None = None, weights_dir: str | os.PathLike = WEIGHTS_DIR
              ) -> list[Backbone]:
    """Every backbone: karp's shipped CNNs, then saved CNN runs (newest first), then torchvision's
    (available or not: how_to_get says how to get them)."""
    rows = list(shipped_weights(weights_dir))
    try:
        rows += list_runs(runs_root)
    except (OSError, ValueError):
        pass
    out = []
    for p, meta in rows:
        spec = REGISTRY.get(meta.get("model", ""))
        if spec is not None and spec.model_class is CNN:
            try:
                out.append(karp_backbone(p))
            except (CheckpointError, ValueError, OSError):   # deleted or damaged meanwhile
                continue
    return out + [torchvision_backbone(a) for a in TORCHVISION_ARCHS]


def input_format(config: FineTuneConfig) -> InputFormat:
    """The input a fine-tuned model takes: a karp backbone's channels, side and its dataset's
    preprocess style; a torchvision backbone's weights transforms() (resize, centre crop), with
    mean 0 and std 1 since the model normalises inside."""
    import torchvision.models as tvm  # lazy: torchvision's import costs seconds on a first page
    if config.source == "torchvision":
        t = tvm.get_weight(config.weights).transforms(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        return InputFormat(3, int(t.crop_size[0]), "imagenet", t)
    return InputFormat(config.in_channels, config.image_size, config.input_style)


# ---------------------------------------------------------------------------- the weights


def backbone_state(config: FineTuneConfig, *, download: bool = False) -> dict[str, torch.Tensor]:
    """The backbone's pretrained state_dict under its own names. Raises WeightsUnavailable with
    what to do: torchvision weights not cached (or not downloadable), a karp checkpoint gone or
    changed since it was chosen."""
    if config.source == "torchvision":
        return imagenet.state_dict(config.arch, download=download)
    path = Path(config.weights)
    if not path.is_file():
        raise WeightsUnavailable(_("the backbone checkpoint {path} is not here (moved or deleted?): choose "
                                   "another backbone").format(path=path))
    if config.weights_sha256 and _sha256(path) != config.weights_sha256:
        raise WeightsUnavailable(_("{path} has changed since it was chosen as the backbone (its SHA-256 "
                                   "differs): choose it again").format(path=path))
    try:
        ck = load_checkpoint(path)
    except CheckpointError as e:
        raise WeightsUnavailable(_("the backbone checkpoint cannot be read: {error}").format(error=e)) from None
    if dataclasses.asdict(ck.model.config) != dataclasses.asdict(config.cnn_config):
        raise WeightsUnavailable(_("{path} holds another {arch} than the one this model was configured "
                                   "with: choose it again").format(path=path, arch=config.arch))
    return ck.model.state_dict()


def build_model(backbone: Backbone, n_classes: int, *, mode: str = "head", download: bool = False,
                **overrides: Any) -> FineTune:
    """A FineTune model: the backbone with a new head for n_classes, its pretrained weights loaded
    (not in 'scratch' mode: the same architecture from random weights). The head's initial
    weights follow torch's global seed. Raises WeightsUnavailable."""
    model = FineTune(backbone.config(n_classes, mode, **overrides))
    if mode != "scratch":
        model.load_backbone(backbone_state(model.config, download=download))
    return model


def pretrained_model(config: FineTuneConfig) -> FineTune:
    """The network a fine-tuning run started from: `config`'s backbone with its pretrained weights
    (for Evaluate's before/after projector; 'scratch' runs did not start from it). Its new head is
    random, so only its features mean anything. In eval mode on the CPU. Raises WeightsUnavailable."""
    model = FineTune(dataclasses.replace(config, mode="head"))
    model.load_backbone(backbone_state(config))
    return model.eval()


# ---------------------------------------------------------------------------- the three modes as runs


@dataclass(frozen=True)
class Budget:
    """A short run's default size for a kind of backbone: 28x28 karp CNNs take hundreds of steps
    a minute on a CPU, 224x224 ImageNet networks a few."""

    steps: int
    batch_size: int
    eval_every: int


BUDGETS = {"karp": Budget(150, 32, 10), "torchvision": Budget(20, 8, 4)}   # ResNet-18 on 2 CPU cores: ~2-8 s a step
# AdamW, constant lr after a 5% warm-up. karp: each mode's best of 3e-3, 1e-2, 3e-2 on the few-shot
# task of bench/bench_finetune.py; torchvision: a tenth of those (not measured here: no ImageNet
# weights on the machine that wrote this; 1e-3 is the Adam rate the PyTorch and Keras guides use)
MODE_LR = {"karp": {"head": 3e-2, "whole": 1e-2, "scratch": 1e-2},
           "torchvision": {"head": 3e-3, "whole": 1e-3, "scratch": 1e-3}}


def mode_spec(backbone: Backbone, data: Any, mode: str, *, steps: int | None = None,
              batch_size: int | None = None, seed: int = 0, lr: float | None = None,
              label: str = "", device: str | None = None) -> RunSpec:
    """A RunSpec fine-tuning `backbone` on `data` (an ImageData in backbone.input's format, e.g.
    own.build's) in `mode` ('head' | 'whole' | 'scratch'): the backbone's Budget and MODE_LR unless
    given, the batch no larger than the training split, an evaluation on the whole validation
    split every Budget.eval_every steps (about ten points for a chart). Raises ValueError for an
    unknown mode or data in another format."""
    if mode not in MODES:
        raise ValueError(f"unknown fine-tuning mode {mode!r}; choose from {MODES}")
    fmt = backbone.input
    if (data.channels, *data.size) != (fmt.channels, fmt.size, fmt.size):
        raise ValueError(f"the data is {data.channels}x{data.size[0]}x{data.size[1]}, the backbone takes "
                         f"{fmt.channels}x{fmt.size}x{fmt.size}: build it in backbone.input's format")
    b = BUDGETS[backbone.source]
    steps = int(steps or b.steps)
    cfg = TrainConfig(steps=steps, batch_size=max(1, min(batch_size or b.batch_size, len(data.train_y))),
                      lr=lr or MODE_LR[backbone.source][mode], schedule="constant", warmup=0.05,
                      eval_every=max(1, min(b.eval_every, steps // 5 or 1)), eval_batches=None, seed=seed)
    return RunSpec(model="finetune", dataset=data.name, data=data, preset=mode, overrides=dict(backbone.fields),
                   config=cfg, label=label or mode, device=device)


def layers_of(backbone: Backbone, n_classes: int, mode: str) -> list[Block]:
    """The blocks of the fine-tuned network (models.finetune.blocks) and which of them train in
    `mode`, from the architecture alone: built on the meta device (no memory, no weights read),
    so VGG16's 138M parameters cost nothing."""
    with torch.device("meta"):
        model = FineTune(backbone.config(n_classes, mode))
    return blocks(model)
