"""Compression (karp_models/compress.py) on the shipped fast CNN and the real Fashion-MNIST: pruning
gives exactly the sparsity asked for, a fine-tune keeps the zeros, int8 answers as float32 does on
the whole test set, sizes and latencies are measured numbers, and explanations are compared as
the sanity check compares them."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from karp_models import compress as C
from karp_models.introspect.evaluate import fused_for_inference
from karp_models import data
from karp_models.introspect.evaluate import predict_probs
from karp_models.train.checkpoints import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FAST = ROOT / "weights" / "fast-fashion-mnist.safetensors"
CLASSIC = ROOT / "weights" / "classic-fashion-mnist.safetensors"
pytestmark = pytest.mark.skipif(not FAST.exists(), reason="shipped weights missing")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fast() -> nn.Module:
    return load_checkpoint(FAST).model.eval()


@pytest.fixture(scope="module")
def fm():
    return data.load("fashion-mnist")


def _weights(model):
    return [m.weight.detach() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

# ---------------------------------------------------------------------------- pruning


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.9])
def test_unstructured_pruning_zeroes_exactly_the_share_asked(fast, amount):
    before = [w.clone() for w in _weights(fast)]
    n = sum(w.numel() for w in before)
    assert sum(int((w == 0).sum()) for w in before) == 0          # no zeros to start with
    pruned = C.make_permanent(C.prune_model(fast, "unstructured", amount))
    zeros = sum(int((w == 0).sum()) for w in _weights(pruned))
    assert zeros == round(amount * n)                             # global: the share over all weights
    assert C.weight_sparsity(pruned) == pytest.approx(amount, abs=1 / n)
    # the smallest |w| went: every surviving weight is at least as large as every pruned one
    flat = torch.cat([w.flatten() for w in before]).abs()
    kept = torch.cat([w.flatten() for w in _weights(pruned)]) != 0
    assert flat[kept].min() >= flat[~kept].max()
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(fast)))    # the original is untouched


@pytest.mark.parametrize("amount", [0.3, 0.7])
def test_structured_pruning_zeroes_whole_channels_and_they_output_zero(fast, amount, fm):
    pruned = C.make_permanent(C.prune_model(fast, "structured", amount))
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    zero_total = 0
    for conv in convs:
        dead = (conv.weight.flatten(1) == 0).all(1)                   # (C_out,)
        assert int(dead.sum()) == round(amount * conv.out_channels)    # that share of every conv
        zero_total += int(dead.sum())
    assert C.channel_sparsity(pruned) == zero_total / sum(c.out_channels for c in convs)
    assert C.channel_sparsity(pruned) == pytest.approx(amount, abs=0.02)
    # the BatchNorm after each conv has the same channels at 0, so they output 0 as if removed
    outs = {}
    hooks = [bn.register_forward_hook(lambda m, i, o, conv=conv: outs.__setitem__(conv, o))
             for conv, bn in C.conv_norm_pairs(pruned)]
    with torch.no_grad():
        pruned(fm.test_x[:8].float() / 255)
    for h in hooks:
        h.remove()
    assert len(outs) == len(convs)
    for conv, o in outs.items():
        dead = (conv.weight.flatten(1) == 0).all(1)
        assert (o[:, dead] == 0).all() and (o[:, ~dead] != 0).any()


def test_pruning_refuses_what_it_cannot_do(fast):
    with pytest.raises(ValueError, match="amount"):
        C.prune_model(fast, "unstructured", 1.0)
    with pytest.raises(ValueError, match="kind"):
        C.prune_model(fast, "random", 0.5)
    with pytest.raises(ValueError, match="conv"):
        C.prune_model(nn.Sequential(nn.Linear(4, 2)), "structured", 0.5)


def test_finetune_runs_through_the_trainer_and_keeps_the_zeros(fast, fm):
    pruned = C.prune_model(fast, "unstructured", 0.5)
    before = C.make_permanent(C.prune_model(fast, "unstructured", 0.5))
    tuned = C.make_permanent(C.finetune(pruned, fm, steps=3, batch_size=32))
    for a, b in zip(_weights(before), _weights(tuned)):
        assert torch.equal(a == 0, b == 0)                             # the same weights are 0
    assert any(not torch.equal(a, b) for a, b in zip(_weights(before), _weights(tuned)))   # the rest moved
    assert C.weight_sparsity(tuned) == C.weight_sparsity(before)

def test_finetune_config_is_the_documented_recipe():
    cfg = C.finetune_config(50, lr=0.02, batch_size=64)
    assert (cfg.steps, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.schedule, cfg.warmup, cfg.label_smoothing,
            cfg.batch_size, cfg.eval_every) == (50, "sgd", 0.02, 5e-4, "cosine", 0.0, 0.1, 64, 0)

# ---------------------------------------------------------------------------- int8


@pytest.fixture(scope="module")
def int8(fast, fm):
    calib = fm.train_x[:512].float() / 255
    return C.quantize_static(fast, calib)


def test_static_int8_agrees_with_float32_on_the_whole_test_set(fast, int8, fm):
    """The issue's bar: the same answer on at least 98% of the 10,000 test images (measured: 99.6%)."""
    assert len(fm.test_y) == 10_000
    ref = predict_probs(fast, fm.test_x).argmax(1)
    q = C.predictions(int8, fm.test_x)
    agree = (q == ref).mean()
    assert agree >= 0.98, agree
    assert abs((q == fm.test_y.numpy()).mean() - (ref == fm.test_y.numpy()).mean()) < 0.01
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in int8.modules())
    # the dequantised twin (for explanations) answers as the int8 model does
    twin = C.dequantised_twin(fast, "int8-static")
    assert (C.predictions(twin, fm.test_x[:2000]) == q[:2000]).mean() >= 0.98


@pytest.mark.skipif(not CLASSIC.exists(), reason="shipped weights missing")
def test_dynamic_int8_shrinks_the_linear_layers(fm):
    classic = load_checkpoint(CLASSIC).model.eval()                  # fc1 holds 401,536 of its 454,922 weights
    q = C.quantize_dynamic(classic)
    x = fm.test_x[:2000]
    assert (C.predictions(q, x) == predict_probs(classic, x).argmax(1)).mean() >= 0.98
    assert C.model_size(q).dense < 0.35 * C.model_size(classic).dense
    with pytest.raises(ValueError, match="Linear"):
        C.quantize_dynamic(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_static_int8_says_when_fx_cannot_trace():
    class Branchy(nn.Module):
        def forward(self, x):
            return (x if x.sum() > 0 else -x).flatten(1), None          # data-dependent control flow

    with pytest.raises(ValueError, match="torch.fx cannot trace"):
        C.quantize_static(Branchy(), torch.rand(4, 1, 8, 8))

# ---------------------------------------------------------------------------- measurements


def test_sizes_are_measured_and_count_zeros_honestly(fast, int8):
    params = sum(p.numel() for p in fast.parameters())
    s = C.model_size(fast)
    assert s.dense == s.stored and 4 * params < s.dense < 4 * params * 1.05   # float32 plus a small header
    half = C.model_size(C.make_permanent(C.prune_model(fast, "unstructured", 0.5)))
    assert half.dense == pytest.approx(s.dense, rel=1e-3)              # zeros cost as much as any float
    # stored sparsely: about half the values plus one bit per weight
    assert 0.5 * s.dense < half.stored < (0.5 + 1 / 32 + 0.02) * s.dense
    q = C.model_size(int8)
    assert q.dense < 0.3 * s.dense                                     # 8 bits a weight instead of 32


def test_latency_is_a_sane_median(fast, int8, fm):
    x1 = fm.test_x[:1].float() / 255
    f = C.latency_ms(fused_for_inference(fast), x1, warmup=3, repeat=15)
    q = C.latency_ms(int8, x1, warmup=3, repeat=15)
    for v in (f, q):
        assert 0.01 < v < 1000 and np.isfinite(v)                      # ms per image, not s or us


def test_explanations_of_a_model_are_like_its_own(fast, fm):
    x = fm.test_x[:2].float() / 255
    t = fast(x)[0].argmax(-1).tolist()
    a = C.explain_maps(fast, x, t)
    assert set(a) == {"Grad-CAM", "Integrated Gradients"} and a["Grad-CAM"].shape == (2, 28, 28)
    same = C.compare_maps(a, a)
    assert C.mean_similarity(same["Grad-CAM"]) == pytest.approx(1.0)
    flipped = {k: v[:, ::-1].copy() for k, v in a.items()}             # upside down: not the same map
    assert C.mean_similarity(C.compare_maps(a, flipped)["Grad-CAM"]) < 0.9


def test_a_small_sweep_has_every_point_in_order(fast, fm):
    cfg = C.SweepConfig(kinds=("unstructured", "structured"), sparsities=(0.5,), finetune_steps=2, n_test=200,
                        n_explain=1, n_calibration=64, latency_repeats=3, batch_size=16)
    seen = []
    sw = C.sweep(fast, fm, cfg, progress=lambda d, t, w: seen.append((d, t)))
    assert [(p.kind, p.sparsity, p.finetune_steps) for p in sw.points] == [
        ("original", 0, 0), ("unstructured", 0.5, 0), ("unstructured", 0.5, 2), ("structured", 0.5, 0),
        ("structured", 0.5, 2), ("int8-dynamic", 0, 0), ("int8-static", 0, 0)]
    assert seen[-1] == (7, 7) and not sw.skipped
    o = sw.original
    assert o.agreement == 1.0 and C.mean_similarity(o.similarity["Grad-CAM"]) == pytest.approx(1.0)
    assert sw.points[1].zero_weights == pytest.approx(0.5, abs=1e-5)
    assert sw.points[3].zero_channels == pytest.approx(0.5, abs=0.02)
    assert sw.points[-1].twin_agreement >= 0.95
    assert all(0 <= p.accuracy <= 1 and p.latency_ms > 0 for p in sw.points)
    assert fast(fm.test_x[:1].float() / 255)[0].shape == (1, 10)       # the model given is untouched
    assert C.weight_sparsity(fast) == 0
