"""Transfer learning: a pretrained network's layers (a karp CNN, or torchvision's ImageNet ResNet-18,
MobileNetV3-Large or VGG16) with a new last layer for a person's own classes.

The pretrained network is kept whole but for its last Linear, which becomes `classifier.head`
with n_classes outputs: the PyTorch transfer-learning tutorial's recipe (replace `fc`, freeze the
rest for "ConvNet as fixed feature extractor") and the Keras guide's (a frozen base runs in
inference mode, so its BatchNorm statistics stay as they were). Three modes: 'head' trains only
the head (the rest has requires_grad False and stays in eval mode), 'whole' trains everything,
the pretrained layers at `backbone_lr_scale` times the learning rate (discriminative learning
rates, ULMFiT), 'scratch' is the same architecture from random weights. This file builds the
architecture only; karp_models.train.finetune loads the pretrained weights (`load_backbone`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cnn import ARCHS as CNN_ARCHS
from .cnn import CNN, CNNConfig

# ---------------------------------------------------------------------------- config

SOURCES = ("karp", "torchvision")
TORCHVISION_ARCHS = ("resnet18", "mobilenet_v3_large", "vgg16")
MODES = ("head", "whole", "scratch")


@dataclass(frozen=True)
class FineTuneConfig:
    """A backbone and a new head. The input (channels, side, mean/std) is the backbone's own."""

    source: str = "karp"               # 'karp' (a karp CNN checkpoint) | 'torchvision' (ImageNet)
    arch: str = "classic"              # karp: a CNN arch (models.cnn.ARCHS); torchvision: TORCHVISION_ARCHS
    weights: str = ""                  # where the backbone's weights come from: karp: the checkpoint
                                       # file; torchvision: the weights' name, whose transforms() make the input
    weights_sha256: str = ""           # karp: the checkpoint's SHA-256 when it was chosen
    backbone_config: dict = field(default_factory=dict, hash=False)  # karp: the checkpoint's CNNConfig
    input_style: str = "fashion"       # karp: the preprocess style of the backbone's dataset
    n_classes: int = 2
    mode: str = "head"                 # 'head' | 'whole' | 'scratch'
    backbone_lr_scale: float = 0.1     # 'whole': the pretrained layers' lr as a fraction of the head's

    def __post_init__(self) -> None:
        object.__setattr__(self, "backbone_config",                   # JSON lists and tuples compare equal
                           {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in self.backbone_config.items()})
        if self.source not in SOURCES:
            raise ValueError(f"unknown backbone source {self.source!r}; choose from {SOURCES}")
        if self.mode not in MODES:
            raise ValueError(f"unknown fine-tuning mode {self.mode!r}; choose from {MODES}")
        if not 2 <= self.n_classes <= 1000:
            raise ValueError(f"n_classes must be 2..1000, got {self.n_classes}")
        if not 0 < self.backbone_lr_scale <= 1:
            raise ValueError(f"backbone_lr_scale must be in (0, 1], got {self.backbone_lr_scale}")
        if self.source == "karp":
            if self.arch not in CNN_ARCHS:
                raise ValueError(f"a karp backbone is a CNN {CNN_ARCHS}, not {self.arch!r}")
            if self.backbone_config.get("arch", self.arch) != self.arch:
                raise ValueError(f"backbone_config is a {self.backbone_config['arch']!r}, not {self.arch!r}")
            self.cnn_config                                          # raises on a bad config
        else:
            if self.arch not in TORCHVISION_ARCHS:
                raise ValueError(f"a torchvision backbone is one of {TORCHVISION_ARCHS}, not {self.arch!r}")
            self.transforms                                          # raises on unknown weights

    @property
    def cnn_config(self) -> CNNConfig:
        """karp: the backbone's CNNConfig (lists from JSON back to tuples)."""
        return CNNConfig(**{**self.backbone_config, "arch": self.arch})

    @property
    def transforms(self) -> Any:
        """torchvision: the weights' own preprocessing (torchvision.transforms._presets.ImageClassification)."""
        import torchvision.models as tvm  # lazy: torchvision's import costs seconds on a first page
        try:
            return tvm.get_weight(self.weights).transforms()
        except (ValueError, KeyError, AttributeError) as e:
            raise ValueError(f"{self.weights!r} is not a torchvision weights name "
                             f"(e.g. 'ResNet18_Weights.IMAGENET1K_V1')") from e

    # the input, as every image model's config states it (Predict and Explain read these)
    @property
    def in_channels(self) -> int:
        return self.cnn_config.in_channels if self.source == "karp" else 3

    @property
    def image_size(self) -> int:
        return self.cnn_config.image_size if self.source == "karp" else int(self.transforms.crop_size[0])

    @property
    def resize_size(self) -> int | None:
        """torchvision: the shorter side before the centre crop; None for karp backbones."""
        return None if self.source == "karp" else int(self.transforms.resize_size[0])

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.cnn_config.mean) if self.source == "karp" else tuple(self.transforms.mean)

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.cnn_config.std) if self.source == "karp" else tuple(self.transforms.std)


PRESETS: dict[str, FineTuneConfig] = {m: FineTuneConfig(mode=m) for m in MODES}

# ---------------------------------------------------------------------------- backbones


def torchvision_net(arch: str) -> nn.Module:
    """torchvision's architecture with random weights (nothing downloaded)."""
    import torchvision.models as tvm  # lazy: torchvision's import costs seconds on a first page
    return tvm.get_model(arch, weights=None)


def _split_torchvision(net: nn.Module) -> tuple[nn.Module, list[tuple[str, nn.Module]], nn.Linear, list[str]]:
    """(features, classifier layers before the last Linear, that Linear, spatial layer names)."""
    import torchvision.models as tvm  # lazy: torchvision's import costs seconds on a first page
    if isinstance(net, tvm.ResNet):
        keep = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        features = nn.Sequential(OrderedDict((k, getattr(net, k)) for k in keep))  # (B, 512, H/32, W/32)
        names = ["features." + k for k in ("relu", "layer1", "layer2", "layer3", "layer4")]
        return features, [("pool", net.avgpool), ("flatten", nn.Flatten())], net.fc, names
    if isinstance(net, tvm.MobileNetV3 | tvm.VGG):
        *body, last = list(net.classifier)
        if isinstance(net, tvm.VGG):   # each block's last ReLU, before its max-pool
            names = [f"features.{i - 1}" for i, m in enumerate(net.features) if isinstance(m, nn.MaxPool2d)]
        else:
            names = [f"features.{i}" for i in range(len(net.features))]
        layers = [("pool", net.avgpool), ("flatten", nn.Flatten())] + [(str(i), m) for i, m in enumerate(body)]
        return net.features, layers, last, names                    # classifier.<i>: torchvision's names
    raise ValueError(f"no fine-tuning recipe for {type(net).__name__}")


def _split_cnn(cnn: CNN) -> tuple[nn.Module, list[tuple[str, nn.Module]], nn.Linear, list[str]]:
    *body, (last_name, last) = list(cnn.classifier.named_children())
    return cnn.features, body, last, list(cnn.feature_layers)


# ---------------------------------------------------------------------------- model


class FineTune(nn.Module):
    """A backbone and a new `classifier.head` (n_classes) on float input in [0, 1], normalised
    inside with the backbone's mean/std. `pretrained_keys` maps the backbone's own state_dict
    names to this model's; `load_backbone` copies them in."""

    def __init__(self, config: FineTuneConfig) -> None:
        super().__init__()
        self.config = config
        source = CNN(config.cnn_config) if config.source == "karp" else torchvision_net(config.arch)
        features, body, last, names = (_split_cnn(source) if config.source == "karp"
                                       else _split_torchvision(source))
        self.features = features                                     # (B, C', H', W')
        self.classifier = nn.Sequential(OrderedDict(body + [("head", nn.Linear(last.in_features, config.n_classes))]))
        self.feature_layers: list[str] = names                       # spatial maps; the last is Grad-CAM's
        C = config.in_channels
        self.register_buffer("mean", torch.tensor(config.mean, dtype=torch.float32).view(1, C, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std, dtype=torch.float32).view(1, C, 1, 1), persistent=False)
        for m in self.modules():                                     # hooks and Grad-CAM dislike in-place ops
            if getattr(m, "inplace", False):                         # ReLU, Hardswish, Dropout, ...
                m.inplace = False
        mine = {id(t): k for k, t in self.state_dict(keep_vars=True).items()}
        theirs = source.state_dict(keep_vars=True)
        self.pretrained_keys = {k: mine[id(t)] for k, t in theirs.items() if id(t) in mine}
        self.replaced_keys = tuple(k for k, t in theirs.items() if id(t) not in mine)  # the old last layer
        if config.mode == "head":
            for p in self.backbone_parameters():
                p.requires_grad_(False)

    @property
    def head(self) -> nn.Linear:
        return self.classifier.head

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the new head's: what 'head' freezes and 'whole' trains slower."""
        head = {id(p) for p in self.head.parameters()}
        return [p for p in self.parameters() if id(p) not in head]

    def train(self, mode: bool = True) -> FineTune:
        """As nn.Module.train, but a frozen backbone ('head' mode) always runs in eval mode: its
        BatchNorm statistics and dropout stay as pretrained (Keras's frozen-layer behaviour)."""
        super().train(mode)
        if self.config.mode == "head":
            for name, m in self.named_children():
                if name != "classifier":
                    m.eval()
            for name, m in self.classifier.named_children():
                if name != "head":
                    m.eval()
        return self

    @torch.no_grad()
    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Copy a pretrained network's state_dict (its own names; its last layer is ignored) into
        the backbone. Raises ValueError naming missing, unexpected or mis-shaped tensors."""
        missing = sorted(set(self.pretrained_keys) - set(state))
        unexpected = sorted(set(state) - set(self.pretrained_keys) - set(self.replaced_keys))
        own = self.state_dict(keep_vars=True)
        wrong = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[v].shape)}"
                       for k, v in self.pretrained_keys.items() if k in state and state[k].shape != own[v].shape)
        if missing or unexpected or wrong:
            parts = [f"missing {missing[:5]}" if missing else "", f"unexpected {unexpected[:5]}" if unexpected else "",
                     f"shape mismatch (given vs model) {wrong[:5]}" if wrong else ""]
            raise ValueError(f"these weights do not fit the {self.config.arch} backbone: "
                             + "; ".join(p for p in parts if p))
        for k, v in self.pretrained_keys.items():
            own[v].copy_(state[k])

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = (x - self.mean) / self.std                               # (B, C, H, W)
        logits = self.classifier(self.features(x))                   # (B, n_classes)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss


# ---------------------------------------------------------------------------- registry hooks and the page's table


def fit_data(preset: FineTuneConfig, values: dict[str, Any]) -> dict[str, Any]:
    """build_for's hook: the data's classes set n_classes; its channels and side must be the
    backbone's (own.InputFormat makes them so); the backbone keeps its own mean/std."""
    values = dict(values)
    C, S = values.pop("in_channels", None), values.pop("image_size", None)
    values.pop("mean", None), values.pop("std", None)
    cfg = replace(preset, **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    if (C, S) != (None, None) and (C, S) != (cfg.in_channels, cfg.image_size):
        raise ValueError(f"the {cfg.arch} backbone takes {cfg.in_channels}x{cfg.image_size}x{cfg.image_size} "
                         f"images, the data is {C}x{S}x{S}: make the data in the backbone's input format")
    return values


@dataclass(frozen=True)
class Layer:
    name: str            # 'features.conv1', 'classifier.head'
    kind: str            # 'Conv2d', 'Linear', 'BatchNorm2d', ...
    params: int
    trainable: bool      # every parameter has requires_grad
    lr_scale: float      # of the run's learning rate ('whole': the backbone's is lower); 0 when frozen


def layer_table(model: nn.Module) -> list[Layer]:
    """The layers that hold parameters, input first: which are frozen and at what learning rate."""
    cfg = getattr(model, "config", None)
    scale = cfg.backbone_lr_scale if getattr(cfg, "mode", "") == "whole" else 1.0
    head = getattr(model, "head", None)
    out = []
    for name, m in model.named_modules():
        ps = list(m.parameters(recurse=False))
        if not ps:
            continue
        trainable = all(p.requires_grad for p in ps)
        out.append(Layer(name, type(m).__name__, sum(p.numel() for p in ps), trainable,
                         0.0 if not trainable else 1.0 if m is head else scale))
    return out


@dataclass(frozen=True)
class Block:
    """Layers grouped by the first `depth` parts of their names ('features.layer1'): what a
    diagram of the network shows, input first."""

    name: str            # 'features.layer1', 'classifier.head'
    kinds: tuple[tuple[str, int], ...]  # (layer kind, how many), in order of first appearance
    params: int
    trainable: int       # parameters that train (the rest are frozen)
    lr_scale: float      # of the run's learning rate for its trained layers; 0 when all frozen
    new: bool            # the new head (random weights even when the rest is pretrained)

    @property
    def frozen(self) -> bool:
        return self.trainable == 0


def blocks(model: nn.Module, depth: int = 2) -> list[Block]:
    """layer_table grouped into blocks: ResNet-18 -> stem, layer1..4, head; VGG16 -> its conv and
    linear layers; a karp CNN -> its layers."""
    groups: dict[str, list[Layer]] = {}
    for r in layer_table(model):
        groups.setdefault(".".join(r.name.split(".")[:depth]), []).append(r)
    out = []
    for name, rows in groups.items():
        kinds: dict[str, int] = {}
        for r in rows:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        trained = [r for r in rows if r.trainable]
        out.append(Block(name, tuple(kinds.items()), sum(r.params for r in rows), sum(r.params for r in trained),
                         max((r.lr_scale for r in trained), default=0.0), name == "classifier.head"))
    return out
