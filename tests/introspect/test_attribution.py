"""Attribution methods against Captum's own properties: IG completeness, Grad-CAM's shape and
upsampling, every method on a tiny CNN and a tiny ViT, and the model left as it was."""
import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam

from karp_models.introspect import attribution as A
from karp_models.introspect.hooks import layer
from karp_models.models.attention import ViT, ViTConfig
from karp_models.models.cnn import CNN, CNNConfig


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return ViT(ViTConfig(image_size=16, patch_size=4, n_embd=16, n_layer=2, n_head=2)).eval()


@pytest.fixture(scope="module")
def x():
    return torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))


def _f(model, x, t):
    with torch.no_grad():
        return model(x)[0][0, t].item()


def test_integrated_gradients_completeness(cnn, x):
    t = 3
    ig = A.make("Integrated Gradients", cnn)
    base = torch.zeros_like(x)
    attr, delta = ig.attribute(x, target=t, baselines=base, n_steps=50, return_convergence_delta=True)
    gap = _f(cnn, x, t) - _f(cnn, base, t)
    assert attr.shape == x.shape
    assert abs(attr.sum().item() - gap) <= abs(delta.item()) + 1e-5    # the reported delta is the gap
    assert abs(delta.item()) < 0.05 * abs(gap) + 1e-3                   # and it is small at 50 steps
    r = A.attribute(cnn, x, t, "Integrated Gradients")                   # the wrapper reports the same
    assert r.delta == pytest.approx(abs(delta.item()), rel=1e-4, abs=1e-6)
    assert r.map.sum() == pytest.approx(attr.sum().item(), rel=1e-4, abs=1e-5)


def test_gradcam_shape_and_upsampling(cnn, x):
    name = A.gradcam_layer(cnn)
    assert name == cnn.feature_layers[-1]
    raw = LayerGradCam(A.Logits(cnn), layer(cnn, name)).attribute(x, target=2, relu_attributions=True)
    assert raw.shape == (1, 1, 2, 2)                                     # 16 / 8 after three pools
    up = A.make("Grad-CAM", cnn).attribute(x, target=2, interpolate_mode="nearest")
    assert up.shape == (1, 1, 16, 16)
    blocks = up[0, 0].reshape(2, 8, 2, 8).permute(0, 2, 1, 3)             # (2, 2, 8, 8)
    assert torch.allclose(blocks, raw[0, 0, :, :, None, None].expand(2, 2, 8, 8))
    smooth = A.make("Grad-CAM", cnn).attribute(x, target=2)              # bilinear by default
    assert smooth.shape == (1, 1, 16, 16) and (smooth >= 0).all()
    assert smooth.min() >= raw.min() - 1e-6 and smooth.max() <= raw.max() + 1e-6


def test_every_method_on_cnn_and_vit_leaves_the_model_alone(cnn, vit, x):
    assert "Attention rollout" not in A.available(cnn)
    assert "Attention rollout" in A.available(vit)
    assert A.gradcam_layer(vit) == "patch_embed"
    for model in (cnn, vit):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        out = A.attribute_all(model, x, 1, A.available(model))
        for name, r in out.items():
            assert r.attr.shape == (1, 16, 16) and r.map.shape == (16, 16), name
            assert np.isfinite(r.map).all(), name
            if not A.METHODS[name].signed:
                assert (r.map >= -1e-7).all(), name
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


@pytest.mark.parametrize("method", ["SmoothGrad", "GradientSHAP"])
def test_seeded_methods_are_reproducible(cnn, x, method):
    a = A.attribute(cnn, x, 0, method, seed=5).map
    np.random.rand(3), torch.rand(3)                                     # global generators move on
    b = A.attribute(cnn, x, 0, method, seed=5).map
    c = A.attribute(cnn, x, 0, method, seed=6).map
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_normalise_puts_maps_on_one_signed_scale():
    maps = {"big": np.array([[-300.0, 100.0], [0.0, 50.0]]), "small": np.array([[1e-4, 2e-4], [0, 0]])}
    n = A.normalise(maps, percentile=100)
    assert n["big"].min() == -1 and n["big"][0, 1] == pytest.approx(1 / 3)
    assert n["small"].max() == 1 and n["small"].min() == 0


def test_unknown_method_names_the_known_ones(cnn):
    with pytest.raises(KeyError, match="Saliency"):
        A.make("Magic", cnn)


def test_hooked_methods_follow_a_model_whose_weights_change(x):
    torch.manual_seed(0)
    model = CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))).eval()
    first = A.attribute(model, x, 0, "Grad-CAM").map
    assert np.array_equal(first, A.attribute(model, x, 0, "Grad-CAM").map)   # the private copy is reused
    with torch.no_grad():
        model.classifier.fc.weight.mul_(-1)                                  # as an optimizer step would
    assert not np.array_equal(first, A.attribute(model, x, 0, "Grad-CAM").map)
