"""Attribution methods against Captum's own properties: IG completeness, Grad-CAM's shape and
upsampling, and every row of the method table on a tiny CNN and a tiny ViT (shape, sign,
convergence delta, seed, hooks) with the shared model left as it was."""
import copy
import dataclasses
import re
import warnings

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam
from torch import nn

from karp_models.introspect import attribution as A
from karp_models.introspect.hooks import layer
from karp_models.models.attention import ViT, ViTConfig
from karp_models.models.cnn import CNN, CNNConfig

STOCHASTIC = {"SmoothGrad", "GradientSHAP"}     # draw noise from the seed; the rest are functions of model and x
REGISTER = [n for n in dir(nn.Module) if n.startswith("register") and n.endswith("_hook") and "state_dict" not in n]


def _tiny_vit() -> ViT:
    torch.manual_seed(0)
    return ViT(ViTConfig(image_size=16, patch_size=4, n_embd=16, n_layer=2, n_head=2)).eval()


with torch.random.fork_rng(devices=[]):          # the table's predicates decide which pairs run
    _PROBES = {"cnn": CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))), "vit": _tiny_vit()}
CASES = [pytest.param(kind, name, id=f"{kind}-{name}")
         for kind, probe in _PROBES.items() for name, m in A.METHODS.items() if m.applies(probe)]


@pytest.fixture(scope="module")
def vit():
    return _tiny_vit()


@pytest.fixture(scope="module")
def x():
    return torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))


def _f(model, x, t):
    with torch.no_grad():
        return model(x)[0][0, t].item()


def _state(model):
    """Everything a run could leave on a model: weights and their in-place versions, grads, hooks, mode."""
    hooks = [(n, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
              len(m._backward_pre_hooks), m.training) for n, m in model.named_modules()]
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    versions = [(t._version, t.requires_grad, t.grad is None) for t in (*model.parameters(), *model.buffers())]
    return tensors, versions, hooks


def _same_state(a, b):
    return a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0]) and a[1:] == b[1:]

# ---------------------------------------------------------------------------- against Captum's own properties


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



def _vit_reference_cam(vit, x, target):
    """pytorch-grad-cam's ViT recipe by hand: activations and gradients of the last block's norm1
    (our ln_1), CLS token dropped, tokens reshaped to (B, D, gh, gw); weights = mean gradient per
    channel; ReLU of the weighted sum."""
    saved = {}

    def keep(_m, _i, out):
        out.retain_grad()
        saved["a"] = out

    h = vit.blocks[-1].ln_1.register_forward_hook(keep)
    try:
        vit.zero_grad()
        vit(x)[0][0, target].backward()
    finally:
        h.remove()
    gh, gw = vit.grid

    def grid(t):                                                         # (1, 1 + P, D) -> (1, D, gh, gw)
        return t[:, 1:].reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
    acts, grads = grid(saved["a"].detach()), grid(saved["a"].grad)
    return torch.relu((grads.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True))   # (1, 1, gh, gw)


@pytest.mark.filterwarnings("ignore::UserWarning")       # Captum's notes on hooks and requires_grad
def test_vit_gradcam_is_pytorch_grad_cams_recipe_on_the_last_blocks_tokens(vit, x):
    cams = []
    for t in range(3):
        ref = _vit_reference_cam(vit, x, t)
        up = A.make("Grad-CAM", vit).attribute(x, target=t, interpolate_mode="nearest")
        assert up.shape == (1, 1, 16, 16)
        assert torch.allclose(up, ref.repeat_interleave(4, 2).repeat_interleave(4, 3), atol=1e-6)
        guided = A.make("Guided Grad-CAM", vit).attribute(x, target=t)       # Captum: cam (nearest) x gradient
        grad = A.make("Saliency", vit).attribute(x, target=t, abs=False)
        assert torch.allclose(guided, up * grad, atol=1e-6)
        cams.append(ref)
    assert max(float(c.max()) for c in cams) > 0
    assert not torch.allclose(cams[0], cams[1])                          # class-discriminative
    grid = A.TokenGrid(vit.blocks[-1].ln_1, vit.grid)
    with torch.no_grad():
        before = vit(x)[0]
        with grid.folded():
            folded = vit(x)[0]
    assert torch.equal(before, folded) and not vit.blocks[-1].ln_1._forward_hooks   # same model, hook gone

# ---------------------------------------------------------------------------- the table


def test_the_table_describes_every_method():
    assert {c.values[1] for c in CASES} == set(A.METHODS)                # every row runs on a tiny model
    for name, m in A.METHODS.items():
        assert m.name == name and m.short and m.abbrev and len(m.abbrev) <= 10, name
        assert re.search(r"\b(19|20)\d\d\b", m.paper), name                # author and year at least
        assert not m.needs_layer or m.hooks_layers, name                   # a layer is read through a hook
        with pytest.raises(dataclasses.FrozenInstanceError):
            m.signed = not m.signed


def test_available_follows_the_table(cnn, vit):
    assert "Attention rollout" not in A.available(cnn)
    assert "Attention rollout" in A.available(vit)
    assert A.gradcam_layer(vit) == "blocks.1.ln_1"                       # not the input side (patch_embed)
    for model in (cnn, vit):
        assert A.available(model) == [n for n, m in A.METHODS.items() if m.applies(model)]
    with pytest.raises(ValueError, match="ViT"):
        A.make("Attention rollout", cnn)


def test_unknown_method_names_the_known_ones(cnn, x):
    with pytest.raises(KeyError, match="Saliency"):
        A.make("Magic", cnn)
    with pytest.raises(KeyError, match="Saliency"):
        A.attribute(cnn, x, 0, "Magic")

# ---------------------------------------------------------------------------- every method, from the table


@pytest.mark.parametrize("kind,name", CASES)
def test_every_method_maps_the_input_and_leaves_the_shared_model_alone(request, kind, name, x):
    model, m = request.getfixturevalue(kind), A.METHODS[name]
    before = _state(model)
    own = {id(mod) for mod in model.modules()}
    ran = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda mod, args, out: ran.append(mod) if id(mod) in own else None)
    try:
        r = A.attribute(model, x, 1, name)
    finally:
        handle.remove()
    assert r.method == name and r.attr.dtype == np.float32
    assert r.attr.shape == x.shape[1:] and r.map.shape == x.shape[2:]
    assert np.isfinite(r.attr).all() and np.allclose(r.map, r.attr.sum(0))
    assert np.abs(r.map).max() > 0                                       # a map, not a blank
    if not m.signed:
        assert (r.map >= -1e-7).all() and (r.attr >= -1e-7).all()
    assert _same_state(_state(model), before)
    assert all(not mod._forward_hooks and not mod._backward_hooks for mod in model.modules())
    assert bool(ran) != m.hooks_layers                                   # hook-based ones ran on the private copy


@pytest.mark.parametrize("kind,name", CASES)
def test_hooks_layers_is_set_for_every_method_that_hooks(monkeypatch, request, kind, name, x):
    own = copy.deepcopy(request.getfixturevalue(kind))
    mods, hooked = {id(mod) for mod in own.modules()}, []
    for reg in REGISTER:
        def spy(self, *args, _reg=getattr(nn.Module, reg), **kw):
            if id(self) in mods:
                hooked.append(self)
            return _reg(self, *args, **kw)
        monkeypatch.setattr(nn.Module, reg, spy)
    with A.explainer_for(name, own, shared=False) as e, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e.attribute(x, target=1, **A.default_kwargs(name, x))
    assert not hooked or A.METHODS[name].hooks_layers                    # hooks need the private copy
    if kind == "cnn":                                                    # conv and ReLU: every hook-based one hooks
        assert bool(hooked) == A.METHODS[name].hooks_layers


@pytest.mark.parametrize("kind,name", CASES)
def test_convergence_delta_is_reported_when_asked_for_and_is_the_gap(request, kind, name, x):
    model, t = request.getfixturevalue(kind), 1
    kw = A.default_kwargs(name, x)
    r = A.attribute(model, x, t, name)
    if not kw.get("return_convergence_delta"):
        assert r.delta is None
        return
    assert r.delta is not None and np.isfinite(r.delta) and r.delta >= 0
    base = kw.get("baselines")
    if torch.is_tensor(base) and base.shape == x.shape:                  # one baseline: Captum's completeness gap
        gap = _f(model, x, t) - _f(model, base, t)
        assert r.delta == pytest.approx(abs(float(r.attr.sum()) - gap), rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("kind,name", CASES)
def test_every_method_is_reproducible_and_only_the_noisy_ones_depend_on_the_seed(request, kind, name, x):
    model = request.getfixturevalue(kind)
    a = A.attribute(model, x, 0, name, seed=5).map
    np.random.rand(3), torch.rand(3)                                     # global generators move on
    b = A.attribute(model, x, 0, name, seed=5).map
    c = A.attribute(model, x, 0, name, seed=6).map
    assert np.array_equal(a, b)
    assert np.array_equal(a, c) == (name not in STOCHASTIC)


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_attribute_all_is_attribute_for_each_method(request, kind, x):
    model = request.getfixturevalue(kind)
    before = _state(model)
    out = A.attribute_all(model, x, 1, A.available(model))
    assert list(out) == A.available(model)
    for name, r in out.items():
        one = A.attribute(model, x, 1, name)
        assert np.array_equal(r.attr, one.attr) and r.delta == one.delta, name
    assert _same_state(_state(model), before)

# ---------------------------------------------------------------------------- scales and private copies


def test_normalise_puts_maps_on_one_signed_scale():
    maps = {"big": np.array([[-300.0, 100.0], [0.0, 50.0]]), "small": np.array([[1e-4, 2e-4], [0, 0]])}
    n = A.normalise(maps, percentile=100)
    assert n["big"].min() == -1 and n["big"][0, 1] == pytest.approx(1 / 3)
    assert n["small"].max() == 1 and n["small"].min() == 0


def test_hooked_methods_follow_a_model_whose_weights_change(x):
    torch.manual_seed(0)
    model = CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))).eval()
    first = A.attribute(model, x, 0, "Grad-CAM").map
    assert np.array_equal(first, A.attribute(model, x, 0, "Grad-CAM").map)   # the private copy is reused
    with torch.no_grad():
        model.classifier.fc.weight.mul_(-1)                                  # as an optimizer step would
    assert not np.array_equal(first, A.attribute(model, x, 0, "Grad-CAM").map)
