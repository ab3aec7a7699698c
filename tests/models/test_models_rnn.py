"""Char RNN / LSTM / GRU: shapes, untrained loss, overfitting, the explicit step loop against nn.RNN/LSTM/GRU,
and generation that carries the hidden state."""

import math

import pytest
import torch

from karp_models.models import build
from karp_models.models.rnn import GATES

V = 11
CELLS = ["rnn", "lstm", "gru"]


def make(cell: str, **kw):
    return build(cell, preset="tiny", vocab_size=V, **kw)


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_untrained_loss(cell):
    torch.manual_seed(0)
    m = make(cell)
    idx, tgt = torch.randint(0, V, (4, 9)), torch.randint(0, V, (4, 9))
    logits, loss = m(idx, tgt)
    assert logits.shape == (4, 9, V)
    assert abs(loss.item() - math.log(V)) < 0.3
    assert m(idx)[1] is None


@pytest.mark.parametrize("cell", CELLS)
def test_overfits_one_batch(cell):
    torch.manual_seed(0)
    m = make(cell, n_hidden=64)
    idx = torch.randint(0, V, (4, 16))
    x, y = idx[:, :-1], idx[:, 1:]
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = m(x, y)[1].item()
    for _ in range(150):
        _, loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert m(x, y)[1].item() < 0.3 * first


@pytest.mark.parametrize("cell", CELLS)
def test_explicit_step_loop_matches_fused_cell(cell):
    torch.manual_seed(0)
    m = make(cell, n_layer=2, n_hidden=24, dropout=0.2).eval()
    idx = torch.randint(0, V, (3, 12))
    fused, _ = m(idx)
    logits, states = m.forward_with_states(idx)
    torch.testing.assert_close(logits, fused, atol=1e-5, rtol=0)
    expected = {"h"} | ({"c"} if cell == "lstm" else set()) | set(GATES[cell])
    assert set(states) == expected
    assert all(v.shape == (3, 12, 2, 24) for v in states.values())
    # the last step of every layer is the h_n (and c_n) nn.RNN/LSTM/GRU reports
    _, hidden = m.rnn(m.wte(idx))
    h_n = hidden[0] if cell == "lstm" else hidden                       # (n_layer, B, H)
    torch.testing.assert_close(states["h"][:, -1].transpose(0, 1), h_n, atol=1e-5, rtol=0)
    if cell == "lstm":
        torch.testing.assert_close(states["c"][:, -1].transpose(0, 1), hidden[1], atol=1e-5, rtol=0)
        s = states
        torch.testing.assert_close(s["h"], s["o"] * torch.tanh(s["c"]))  # h = o * tanh(c)
    for g in set(GATES[cell]) - {"g", "n"}:                             # sigmoid gates live in (0, 1)
        assert states[g].min() >= 0 and states[g].max() <= 1


@pytest.mark.parametrize("cell", CELLS)
def test_generate_carries_state_like_a_full_recompute(cell):
    torch.manual_seed(0)
    m = make(cell).eval()
    prompt = torch.randint(0, V, (2, 5))
    out = m.generate(prompt, 20, temperature=0.0)                       # greedy: deterministic
    assert out.shape == (2, 25) and torch.equal(out[:, :5], prompt)
    ref = prompt
    for _ in range(20):                                                 # re-read the whole context each step
        ref = torch.cat([ref, m(ref)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, ref)
    sampled = m.generate(prompt, 30, temperature=1.0, top_k=3)
    assert sampled.shape == (2, 35) and sampled.min() >= 0 and sampled.max() < V


def test_sample_next_respects_top_k_and_temperature():
    from karp_models.models.rnn import sample_next

    torch.manual_seed(0)
    logits = torch.randn(4, V)
    top3 = logits.topk(3, dim=-1).indices                               # (4, 3)
    for _ in range(50):
        tok = sample_next(logits, 1.0, 3)                               # (4, 1)
        assert (tok == top3).any(dim=-1).all()
    assert torch.equal(sample_next(logits, 1.0, 1), logits.argmax(-1, keepdim=True))
    assert torch.equal(sample_next(logits, 0.0, None), logits.argmax(-1, keepdim=True))
