"""CNN family: shapes on three input sizes, untrained loss, overfitting, feature layers, normalisation, sizes."""

import math

import pytest
import torch
import torch.nn as nn
import torchvision

from karp_models.models import CNNConfig, build
from karp_models.models.cnn import CNN

SHAPES = [(1, 8), (1, 28), (3, 32)]
SMALL = {  # tiny widths keep the suite fast; the architecture is the same
    "classic": dict(widths=(8, 16), hidden=32),
    "fast": dict(widths=(8, 8, 16, 16)),
    "tinyvgg": dict(),
    "resnet18": dict(),
}


def make(arch: str, C: int, S: int, n_classes: int = 10, **kw) -> CNN:
    return build(arch, in_channels=C, image_size=S, n_classes=n_classes, mean=(0.5,) * C, std=(0.25,) * C,
                 **{**SMALL[arch], **kw})


@pytest.mark.parametrize("arch", list(SMALL))
@pytest.mark.parametrize("C,S", SHAPES)
def test_output_shape_and_feature_layers(arch, C, S):
    torch.manual_seed(0)
    m = make(arch, C, S, n_classes=7).eval()
    x = torch.rand(3, C, S, S)
    acts = {}
    modules = dict(m.named_modules())
    hooks = [modules[n].register_forward_hook(lambda mod, i, o, n=n: acts.__setitem__(n, o))
             for n in m.feature_layers]
    logits, loss = m(x)
    for h in hooks:
        h.remove()
    assert logits.shape == (3, 7) and loss is None
    assert list(acts) == m.feature_layers and len(m.feature_layers) >= 2
    sizes = [acts[n].shape for n in m.feature_layers]
    assert all(len(s) == 4 and s[0] == 3 for s in sizes)              # spatial maps (B, C, h, w)
    assert sizes[-1][-1] <= sizes[0][-1]                               # resolution never grows


@pytest.mark.parametrize("arch", list(SMALL))
def test_untrained_loss_is_near_chance(arch):
    torch.manual_seed(0)
    m = make(arch, 1, 16)
    x, y = torch.rand(32, 1, 16, 16), torch.randint(0, 10, (32,))
    _, loss = m(x, y)
    assert abs(loss.item() - math.log(10)) < 0.5


@pytest.mark.parametrize("arch", list(SMALL))
def test_overfits_one_batch(arch):
    torch.manual_seed(0)
    m = make(arch, 1, 8)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = m(x, y)[1].item()
    for _ in range(8 if arch == "resnet18" else 60):                    # resnet18 is 11M parameters
        _, loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():                                               # train mode: BN uses batch statistics
        logits, loss = m(x, y)
    assert loss.item() < 0.25 * first
    assert (logits.argmax(1) == y).float().mean() > 0.9


def test_normalisation_uses_config_mean_and_std():
    torch.manual_seed(0)
    a = make("classic", 3, 8)
    b = build("classic", in_channels=3, image_size=8, mean=(0.0,) * 3, std=(1.0,) * 3, **SMALL["classic"])
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(a(x)[0], b((x - 0.5) / 0.25)[0])


def test_classic_is_the_course_network():
    m = build("classic")                                                # 1x28x28, 10 classes
    convs = [l for l in m.modules() if isinstance(l, nn.Conv2d)]
    fcs = [l for l in m.modules() if isinstance(l, nn.Linear)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [(32, (5, 5), (2, 2)), (64, (5, 5), (2, 2))]
    assert [(f.in_features, f.out_features) for f in fcs] == [(64 * 7 * 7, 128), (128, 10)]
    assert sum(p.numel() for p in m.parameters()) == (25 * 32 + 32) + (25 * 32 * 64 + 64) + (3136 * 128 + 128) + 1290


def test_tinyvgg_layer_sequence_matches_cnn_explainer():
    m = build("tinyvgg", in_channels=3, image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3)
    kinds = [type(l).__name__ for l in m.features]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"] * 2
    assert all(l.out_channels == 10 and l.kernel_size == (3, 3) for l in m.features if isinstance(l, nn.Conv2d))
    assert m.classifier.fc.in_features == 10 * 8 * 8


@pytest.mark.parametrize("C", [1, 3])
def test_resnet18_is_torchvision_with_a_small_stem(C):
    m = build("resnet18", in_channels=C, image_size=32, mean=(0.5,) * C, std=(0.5,) * C)
    ref = torchvision.models.resnet18(weights=None, num_classes=10)
    n_ref = sum(p.numel() for p in ref.parameters())
    n = sum(p.numel() for p in m.parameters())
    assert n == n_ref - 3 * 64 * 7 * 7 + C * 64 * 3 * 3                # only conv1 differs
    assert m.features.conv1.stride == (1, 1) and not any(isinstance(l, nn.MaxPool2d) for l in m.modules())


def test_fast_presets_stay_under_a_million_parameters():
    for preset in ("fast", "fast-wide", "fast-small"):
        for C in (1, 3):
            m = build("fast", preset=preset, in_channels=C, mean=(0.5,) * C, std=(0.5,) * C)
            assert sum(p.numel() for p in m.parameters()) < 1_000_000
            assert sum(isinstance(l, nn.BatchNorm2d) for l in m.modules()) >= 4


def test_config_validation():
    with pytest.raises(ValueError):
        CNNConfig(arch="vgg16")
    with pytest.raises(ValueError):
        CNNConfig(in_channels=3, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError):
        CNNConfig(arch="fast", widths=(8, 16))
    with pytest.raises(ValueError):
        CNNConfig(arch="fast", image_size=4)
