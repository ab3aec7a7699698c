"""GPT options (rotary embeddings, QK-norm, ReLU squared) against hand computations, the Muon
parameter split, and the shipped GPT weights against a plain functional forward of the original
architecture (so the options' defaults change nothing)."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.models import build
from karp_models.models.attention import GPTConfig, SelfAttention
from karp_models.models.transformer_ops import apply_rotary, rotary_tables
from karp_models.train.checkpoints import load_checkpoint
from karp_models.train.optim import MuonAdamW, make_optimizer, muon_params
from karp_models.train.trainer import TrainConfig

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def test_rotary_matches_hand_rotation():
    # head size 4: pairs (x0, x2) and (x1, x3), angles m * 1 and m * 10000^(-1/2) = m / 100
    cos, sin = rotary_tables(3, 4)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 3)                       # (T=3, d=4)
    out = apply_rotary(x, cos, sin)
    for m in range(3):
        for i, theta in ((0, 1.0), (1, 0.01)):
            a, b = x[m, i].item(), x[m, i + 2].item()
            c, s = math.cos(m * theta), math.sin(m * theta)
            assert out[m, i].item() == pytest.approx(a * c - b * s, abs=1e-6)
            assert out[m, i + 2].item() == pytest.approx(a * s + b * c, abs=1e-6)
    torch.testing.assert_close(out[0], x[0])                         # position 0: no rotation


def test_rotary_scores_depend_on_relative_position_only():
    cos, sin = rotary_tables(20, 8)
    q, k = torch.randn(8), torch.randn(8)
    qs, ks = apply_rotary(q.expand(20, 8), cos, sin), apply_rotary(k.expand(20, 8), cos, sin)
    assert (qs[5] @ ks[2]).item() == pytest.approx((qs[15] @ ks[12]).item(), abs=1e-4)
    assert (qs[5] @ ks[2]).item() != pytest.approx((qs[5] @ ks[4]).item(), abs=1e-3)


def test_qk_norm_and_rotary_heads_by_hand():
    torch.manual_seed(0)
    att = SelfAttention(16, 2, 0.0, True, causal=True, rotary_len=8, qk_norm=True).eval()
    x = torch.randn(1, 5, 16)
    q, k, v = att._heads(x)
    q0, k0, v0 = (t.view(1, 5, 2, 8).transpose(1, 2) for t in att.c_attn(x).split(16, dim=2))
    rms = lambda t: t / t.pow(2).mean(-1, keepdim=True).add(torch.finfo(t.dtype).eps).sqrt()  # noqa: E731
    cos, sin = rotary_tables(5, 8)
    torch.testing.assert_close(q, apply_rotary(rms(q0), cos, sin))
    torch.testing.assert_close(k, apply_rotary(rms(k0), cos, sin))
    torch.testing.assert_close(v, v0)
    # normalised: every query has RMS 1 (a rotation keeps it)
    torch.testing.assert_close(q.pow(2).mean(-1), torch.ones(1, 2, 5), atol=1e-4, rtol=0)
    # the explain path and the fused path agree with the options on
    fast, _ = att(x)
    slow, w = att(x, return_weights=True)
    torch.testing.assert_close(slow, fast, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kw", [dict(rotary=True), dict(qk_norm=True), dict(rotary=True, qk_norm=True,
                                                                             activation="relu2")])
def test_options_cached_generation_matches_full_forward(kw):
    torch.manual_seed(0)
    m = build("gpt", preset="nano", vocab_size=13, block_size=16, **kw).eval()
    assert ("wpe" in dict(m.transformer.named_children())) != kw.get("rotary", False)
    idx = torch.randint(0, 13, (2, 9))
    full, _ = m(idx)
    logits, cache = m.forward_cached(idx[:, :4])
    torch.testing.assert_close(logits, full[:, 3], atol=1e-5, rtol=0)
    for t in range(4, 9):
        logits, cache = m.forward_cached(idx[:, t:t + 1], cache)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=0)


def test_relu2_mlp():
    m = build("gpt", preset="nano", vocab_size=13, block_size=16, activation="relu2")
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0])
    torch.testing.assert_close(m.transformer.h[0].mlp.gelu(x), torch.tensor([0.0, 0.0, 0.0, 0.25, 9.0]))
    with pytest.raises(ValueError, match="activation"):
        GPTConfig(activation="tanh")
    with pytest.raises(ValueError, match="even head size"):
        GPTConfig(n_embd=6, n_head=2, rotary=True)


def test_muon_gets_the_hidden_matrices_only():
    m = build("gpt", preset="nano", vocab_size=13, block_size=16)
    hidden = {id(p) for p in muon_params(m)}
    names = {n for n, p in m.named_parameters() if id(p) in hidden}
    expected = {f"transformer.h.{i}.{w}.weight" for i in range(2)
                for w in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    assert names == expected                                 # not wte, wpe, lm_head, biases, norms
    opt = make_optimizer(m, TrainConfig(steps=1, optimizer="muon", lr=0.01, weight_decay=0.1), "cpu")
    assert isinstance(opt, MuonAdamW)
    muon_ids = {id(p) for g in opt.muon.param_groups for p in g["params"]}
    adam_ids = {id(p) for g in opt.adamw.param_groups for p in g["params"]}
    assert muon_ids == hidden and not muon_ids & adam_ids
    assert muon_ids | adam_ids == {id(p) for p in m.parameters()}
    # a tied head is an embedding: AdamW's
    tied = build("gpt", preset="nano", vocab_size=13, block_size=16, tie_weights=True)
    assert id(tied.lm_head.weight) not in {id(p) for p in muon_params(tied)}


def test_muon_adamw_steps_like_torchs_own():
    """One step of MuonAdamW equals torch.optim.Muon on the hidden matrices plus AdamW on the rest."""
    torch.manual_seed(0)
    a = build("gpt", preset="nano", vocab_size=13, block_size=16)
    b = build("gpt", preset="nano", vocab_size=13, block_size=16)
    b.load_state_dict(a.state_dict())
    opt = MuonAdamW(a, lr=0.02, weight_decay=0.1)
    hidden = muon_params(b)
    ids = {id(p) for p in hidden}
    ref_m = torch.optim.Muon(hidden, lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    ref_a = torch.optim.AdamW([{"params": [p for p in b.parameters() if id(p) not in ids and p.ndim >= 2
                                           and p is not b.transformer.wte.weight
                                           and p is not b.transformer.wpe.weight], "weight_decay": 0.1},
                               {"params": [p for p in b.parameters() if p.ndim < 2]
                                + [b.transformer.wte.weight, b.transformer.wpe.weight], "weight_decay": 0.0}],
                              lr=0.02, betas=(0.9, 0.95))
    idx = torch.randint(0, 13, (4, 16))
    for model, opts in ((a, [opt]), (b, [ref_m, ref_a])):
        for _ in range(2):
            model(idx, idx)[1].backward()
            for o in opts:
                o.step()
                o.zero_grad()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, msg=n)
    opt.load_state_dict(opt.state_dict())


def _functional_gpt(sd: dict, cfg: dict, idx: torch.Tensor) -> torch.Tensor:
    """The original GPT (learned positions, GELU, LayerNorm with bias, untied head) in plain F.* ops."""
    C, H = cfg["n_embd"], cfg["n_head"]
    B, T = idx.shape
    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]
    ln = lambda x, p: F.layer_norm(x, (C,), sd[p + ".weight"], sd.get(p + ".bias"))  # noqa: E731
    lin = lambda x, p: F.linear(x, sd[p + ".weight"], sd.get(p + ".bias"))  # noqa: E731
    for i in range(cfg["n_layer"]):
        h = f"transformer.h.{i}."
        q, k, v = lin(ln(x, h + "ln_1"), h + "attn.c_attn").split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + lin(y, h + "attn.c_proj")
        x = x + lin(F.gelu(lin(ln(x, h + "ln_2"), h + "mlp.c_fc")), h + "mlp.c_proj")
    return F.linear(ln(x, "transformer.ln_f"), sd["lm_head.weight"])


@pytest.mark.parametrize("name", ["gpt-shakespeare.safetensors", "gpt-classical-zh.safetensors"])
def test_shipped_gpt_weights_load_and_give_the_original_logits(name):
    ckpt = load_checkpoint(WEIGHTS / name)
    model, cfg = ckpt.model, ckpt.config
    assert not model.config.rotary and not model.config.qk_norm and model.config.activation == "gelu"
    torch.manual_seed(0)
    idx = torch.randint(0, cfg["vocab_size"], (2, 40))
    with torch.no_grad():
        logits, _ = model(idx)
        ref = _functional_gpt({k: v for k, v in model.state_dict().items()}, cfg, idx)
    torch.testing.assert_close(logits, ref, atol=1e-4, rtol=1e-4)
    assert all(isinstance(m, nn.GELU) for n, m in model.named_modules() if n.endswith("mlp.gelu"))


def test_muon_splits_a_tasks_groups_and_keeps_their_lr_scale():
    m = build("gpt", preset="nano", vocab_size=13, block_size=16)
    head, rest = [m.lm_head.weight], [p for p in m.parameters() if p is not m.lm_head.weight]
    groups = [{"params": rest, "weight_decay": 0.0, "lr_scale": 0.1},
              {"params": head, "weight_decay": 0.0, "lr_scale": 1.0}]
    opt = make_optimizer(m, TrainConfig(steps=1, optimizer="muon"), "cpu", groups)
    assert [g["lr_scale"] for g in opt.muon.param_groups] == [0.1]       # the head is never Muon's
    assert sorted(g["lr_scale"] for g in opt.adamw.param_groups) == [0.1, 1.0]
    assert len(opt.param_groups) == 3
    with pytest.raises(ValueError, match="hidden Linear"):
        MuonAdamW(nn.Embedding(3, 2), 0.01, 0.0)
