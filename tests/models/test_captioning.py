"""Captioning models: shapes, attention rows that are distributions, greedy decoding that is
teacher forcing on its own output, beam search equal to greedy at width 1 and to an exhaustive
search when the beam holds everything, and a tiny model that learns a handful of captions."""
from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from karp_models.models import build, from_config
from karp_models.models.captioning import PRESETS, Captioner

V = 12


def tiny(attention: bool, seed: int = 0, **kw) -> Captioner:
    torch.manual_seed(seed)
    kw = {"vocab_size": V, "image_size": 32, "max_len": 6, "dropout": 0.0, **kw}
    cfg = replace(PRESETS["tiny"], attention=attention, **kw)
    return Captioner(cfg).eval()


def images(B: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(B, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


CAPS = torch.tensor([[4, 5, 6, 2, 0], [7, 2, 0, 0, 0], [8, 9, 10, 11, 2]])  # ids, </s> = 2, padding 0


@pytest.mark.parametrize("attention", [False, True])
def test_shapes_loss_and_attention_rows(attention):
    m = tiny(attention)
    logits, alphas = m.forward_with_attention(images(), CAPS)
    assert logits.shape == (3, 5, V) and m.grid == 8                        # 32 px / 2^2 stages
    if attention:
        assert alphas.shape == (3, 5, 64)
        assert (alphas >= 0).all() and torch.allclose(alphas.sum(-1), torch.ones(3, 5), atol=1e-5)
    else:
        assert alphas is None
    logits2, loss = m(images(), CAPS)
    assert torch.equal(logits, logits2)
    ref = F.cross_entropy(logits.reshape(-1, V), CAPS.reshape(-1), ignore_index=0)
    assert torch.allclose(loss, ref)
    real = CAPS != 0                                                       # padding changes nothing before it
    lp, _ = m.forward_with_attention(images(), CAPS.masked_fill(~real, 3))
    assert torch.allclose(lp[real], logits[real], atol=1e-6)


@pytest.mark.parametrize("attention", [False, True])
def test_greedy_is_teacher_forcing_on_its_own_output(attention):
    m = tiny(attention)
    x = images(4)
    dec = m.greedy(x)
    assert dec.tokens.shape == dec.probs.shape and dec.tokens.size(1) <= m.config.max_len
    assert not ((dec.tokens == m.config.bos)).any()
    for i in range(4):
        row = dec.tokens[i]
        n = int((row != 0).sum())
        toks = row[:n][None]
        logits, alphas = m.forward_with_attention(x[i:i + 1], toks)
        logits = logits.masked_fill(m._banned(x.device), float("-inf"))    # <pad> and <s> are never written
        assert torch.equal(logits.argmax(-1), toks)                        # each word was the argmax
        p = F.softmax(logits, -1).gather(-1, toks[..., None]).squeeze(-1)
        assert torch.allclose(p, dec.probs[i:i + 1, :n], atol=1e-5)
        if attention:
            assert torch.allclose(alphas, dec.alphas[i:i + 1, :n], atol=1e-5)


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_of_width_one_is_greedy(attention, seed):
    m = tiny(attention, seed=seed)
    x = images(5, seed=seed)
    g = m.greedy(x)
    for i in range(5):
        b = m.beam_search(x[i:i + 1], width=1)
        n = b.tokens.size(1)
        assert torch.equal(b.tokens[0], g.tokens[i, :n]) and (g.tokens[i, n:] == 0).all()
        assert torch.allclose(b.probs[0], g.probs[i, :n], atol=1e-5)
        if attention:
            assert torch.allclose(b.alphas[0], g.alphas[i, :n], atol=1e-5)


@torch.no_grad()
def _log_prob(m: Captioner, x: torch.Tensor, toks: tuple[int, ...]) -> float:
    logits, _ = m.forward_with_attention(x, torch.tensor([toks]))
    never = m._banned(x.device)
    lp = F.log_softmax(logits.masked_fill(never, float("-inf")), -1)[0]
    return float(sum(lp[t, w] for t, w in enumerate(toks)))


@pytest.mark.parametrize("attention", [False, True])
def test_a_beam_that_holds_everything_finds_the_best_caption(attention):
    """Against brute force over every caption of up to 3 words from a 5-word vocabulary."""
    m = tiny(attention, vocab_size=5)                                      # pad, <s>, </s>, 2 words
    m.config = replace(m.config, max_len=3)
    words = (2, 3, 4)
    for seed in range(3):
        x = images(1, seed=seed)
        cands = [c for L in (1, 2, 3) for c in itertools.product(words, repeat=L)
                 if (2 not in c[:-1]) and (c[-1] == 2 or L == 3)]          # ends at </s> or at max_len
        best = max(cands, key=lambda c: _log_prob(m, x, c))
        b = m.beam_search(x, width=len(cands))
        assert tuple(b.tokens[0].tolist()) == best
        assert math.isclose(float(b.probs[0].log().sum()), _log_prob(m, x, best), rel_tol=1e-4)
        narrow = m.beam_search(x, width=2)                                  # a narrow beam is never better
        assert _log_prob(m, x, tuple(narrow.tokens[0].tolist())) <= _log_prob(m, x, best) + 1e-5


def test_beam_search_takes_one_image_and_a_positive_width():
    m = tiny(True)
    with pytest.raises(ValueError):
        m.beam_search(images(2))
    with pytest.raises(ValueError):
        m.beam_search(images(1), width=0)


@pytest.mark.parametrize("attention", [False, True])
def test_a_tiny_captioner_learns_four_captions(attention):
    m = tiny(attention).train()
    x = images(4, seed=3)
    caps = torch.tensor([[4, 5, 2, 0], [6, 7, 8, 2], [9, 2, 0, 0], [10, 11, 4, 2]])
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(150):
        loss = m(x, caps)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    out = m.greedy(x).tokens
    assert torch.equal(out[:, :4].masked_fill(caps == 0, 0), caps)


def test_registry_pins_attention_and_round_trips():
    a, b = build("caption-attention", preset="tiny"), build("caption-lstm", preset="tiny")
    assert a.config.attention and not b.config.attention
    with pytest.raises(ValueError):
        build("caption-lstm", attention=True)
    c = from_config("caption-attention", {**a.config.__dict__, "channels": list(a.config.channels)})
    assert c.config == a.config
