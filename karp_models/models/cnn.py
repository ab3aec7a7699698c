"""Image CNNs: the course network, a fast BatchNorm net, CNN Explainer's TinyVGG and a small-input ResNet-18.

Cites: CNN Explainer (Wang et al. 2020, TinyVGG), Keller Jordan's airbench / Myrtle ResNet-9 (the
`fast` layout: pool early, conv-BN-ReLU, global pooling head), torchvision.models.resnet18.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------- config

ARCHS = ("classic", "fast", "tinyvgg", "resnet18")
DEFAULT_WIDTHS = {"classic": (32, 64), "fast": (24, 32, 64, 128), "tinyvgg": (10,), "resnet18": (64,)}
MIN_SIZE = {"classic": 4, "fast": 8, "tinyvgg": 4, "resnet18": 4}    # each 2x2 pool must leave >= 1 pixel


@dataclass(frozen=True)
class CNNConfig:
    arch: str = "classic"
    in_channels: int = 1
    image_size: int = 28                       # square inputs: (B, in_channels, image_size, image_size)
    n_classes: int = 10
    mean: tuple[float, ...] = (0.5,)           # per channel, on the [0, 1] scale
    std: tuple[float, ...] = (0.5,)
    widths: tuple[int, ...] = ()               # () = the arch's default (DEFAULT_WIDTHS); resnet18 ignores it
    hidden: int = 128                          # classic: width of the fc layer
    dropout: float = 0.0                       # before the classifier

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown CNN arch {self.arch!r}; choose from {ARCHS}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean/std need {self.in_channels} values (one per channel)")
        if self.image_size < MIN_SIZE[self.arch]:
            raise ValueError(f"{self.arch} needs image_size >= {MIN_SIZE[self.arch]}")
        if self.widths and len(self.widths) != len(DEFAULT_WIDTHS[self.arch]):
            raise ValueError(f"{self.arch} takes {len(DEFAULT_WIDTHS[self.arch])} widths, got {self.widths}")

    @property
    def resolved_widths(self) -> tuple[int, ...]:
        return tuple(self.widths) or DEFAULT_WIDTHS[self.arch]


PRESETS: dict[str, CNNConfig] = {
    "classic": CNNConfig(arch="classic"),
    "classic-dropout": CNNConfig(arch="classic", dropout=0.5),   # the course's CIFAR-10 network (75% there)
    "fast": CNNConfig(arch="fast", widths=(24, 32, 64, 128)),
    "fast-wide": CNNConfig(arch="fast", widths=(32, 48, 96, 192)),
    "fast-small": CNNConfig(arch="fast", widths=(16, 24, 48, 96)),   # 0.6-0.7x the time per training step of fast
    "tinyvgg": CNNConfig(arch="tinyvgg"),
    "resnet18": CNNConfig(arch="resnet18"),
}

# ---------------------------------------------------------------------------- bodies


def _cbr(c_in: int, c_out: int) -> list[tuple[str, nn.Module]]:
    """conv3x3 -> BatchNorm -> ReLU, as named layers."""
    return [("conv", nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)),
            ("bn", nn.BatchNorm2d(c_out)), ("relu", nn.ReLU())]


def _classic(cfg: CNNConfig) -> tuple[nn.Sequential, nn.Sequential, list[str]]:
    c1, c2 = cfg.resolved_widths
    s = cfg.image_size // 2 // 2                                    # two 2x2 max-pools
    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(cfg.in_channels, c1, 5, padding=2)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
    ]))                                                              # (B, c2, s, s)
    classifier = nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),                                   # (B, c2 * s * s)
        ("fc1", nn.Linear(c2 * s * s, cfg.hidden)), ("relu3", nn.ReLU()), ("dropout", nn.Dropout(cfg.dropout)),
        ("fc2", nn.Linear(cfg.hidden, cfg.n_classes)),               # (B, n_classes)
    ]))
    return features, classifier, ["features.relu1", "features.relu2"]


def _fast(cfg: CNNConfig) -> tuple[nn.Sequential, nn.Sequential, list[str]]:
    c0, c1, c2, c3 = cfg.resolved_widths
    stages = OrderedDict([("stem", nn.Sequential(OrderedDict(_cbr(cfg.in_channels, c0))))])  # (B, c0, H, W)
    c_in = c0
    for i, c in enumerate((c1, c2, c3), start=1):
        layers = [("pool", nn.MaxPool2d(2))]                         # pool first: convs run at H/2, H/4, H/8
        for j in range(2):
            layers += [(f"{name}{j + 1}", m) for name, m in _cbr(c_in if j == 0 else c, c)]
        stages[f"stage{i}"] = nn.Sequential(OrderedDict(layers))    # (B, c, H / 2^i, W / 2^i)
        c_in = c
    classifier = nn.Sequential(OrderedDict([
        ("pool", nn.AdaptiveMaxPool2d(1)), ("flatten", nn.Flatten()),  # (B, c3)
        ("dropout", nn.Dropout(cfg.dropout)), ("fc", nn.Linear(c3, cfg.n_classes)),
    ]))
    names = ["features.stem", "features.stage1", "features.stage2", "features.stage3"]
    return nn.Sequential(stages), classifier, names


def _tinyvgg(cfg: CNNConfig) -> tuple[nn.Sequential, nn.Sequential, list[str]]:
    (c,) = cfg.resolved_widths
    s = cfg.image_size // 2 // 2
    layers, c_in = [], cfg.in_channels
    for b in (1, 2):
        for j in (1, 2):   # padding 1: CNN Explainer uses valid convs on 64x64; we keep 8x8 inputs alive
            layers += [(f"conv_{b}_{j}", nn.Conv2d(c_in, c, 3, padding=1)), (f"relu_{b}_{j}", nn.ReLU())]
            c_in = c
        layers.append((f"max_pool_{b}", nn.MaxPool2d(2)))
    classifier = nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()), ("dropout", nn.Dropout(cfg.dropout)),  # (B, c * s * s)
        ("fc", nn.Linear(c * s * s, cfg.n_classes)),
    ]))
    names = [f"features.relu_{b}_{j}" for b in (1, 2) for j in (1, 2)]
    return nn.Sequential(OrderedDict(layers)), classifier, names


def _resnet18(cfg: CNNConfig) -> tuple[nn.Sequential, nn.Sequential, list[str]]:
    import torchvision  # lazy: torchvision's import costs seconds on a first page
    net = torchvision.models.resnet18(weights=None, num_classes=cfg.n_classes)
    net.conv1 = nn.Conv2d(cfg.in_channels, 64, 3, stride=1, padding=1, bias=False)  # small-input stem, no max-pool
    for m in net.modules():                                          # hooks and Grad-CAM dislike in-place ops
        if isinstance(m, nn.ReLU):
            m.inplace = False
    keep = ("conv1", "bn1", "relu", "layer1", "layer2", "layer3", "layer4")
    features = nn.Sequential(OrderedDict((k, getattr(net, k)) for k in keep))  # (B, 512, H/8, W/8)
    classifier = nn.Sequential(OrderedDict([
        ("pool", net.avgpool), ("flatten", nn.Flatten()),            # (B, 512)
        ("dropout", nn.Dropout(cfg.dropout)), ("fc", net.fc),
    ]))
    return features, classifier, ["features." + k for k in ("relu",) + keep[3:]]


BODIES = {"classic": _classic, "fast": _fast, "tinyvgg": _tinyvgg, "resnet18": _resnet18}

# ---------------------------------------------------------------------------- model


class CNN(nn.Module):
    """Image classifier on float input in [0, 1]; normalises inside with the config's mean/std."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        C = config.in_channels
        self.register_buffer("mean", torch.tensor(config.mean, dtype=torch.float32).view(1, C, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std, dtype=torch.float32).view(1, C, 1, 1), persistent=False)
        self.features, self.classifier, names = BODIES[config.arch](config)
        self.feature_layers: list[str] = names   # spatial maps in order; the last is Grad-CAM's layer

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = (x - self.mean) / self.std                              # (B, C, H, W)
        logits = self.classifier(self.features(x))                  # (B, n_classes)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss
