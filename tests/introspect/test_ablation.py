"""Knockouts against hand computations: a GPT head's output zeroed (attention recomputed by hand), its mean
computed by hand, an MLP neuron, a CNN channel, a ViT head, an LSTM/GRU cell inside the recurrence (against
nn.LSTMCell / nn.GRUCell), and the batched knockout map against one knockout at a time."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.introspect import ablation as ab
from karp_models.introspect.hooks import capture
from karp_models.models.attention import GPT, GPT_PRESETS, ViT, ViTConfig
from karp_models.models.rnn import PRESETS as RNN_PRESETS, CharRNN


@pytest.fixture(scope="module")
def gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(replace(GPT_PRESETS["nano"], vocab_size=11, n_layer=2, n_head=4, block_size=16)).eval()


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randint(0, 11, (1, 12))


def hand_gpt(model: GPT, idx: torch.Tensor, layer: int, head: int, value: torch.Tensor | float = 0.0) -> torch.Tensor:
    """The GPT's logits written out by hand, with head `head` of block `layer` set to `value` (its (hs,) output)."""
    tr, (B, T) = model.transformer, idx.shape
    x = tr.wte(idx) + tr.wpe(torch.arange(T))
    for i, block in enumerate(tr.h):
        a, nh = block.attn, block.attn.n_head
        q, k, v = a.c_attn(block.ln_1(x)).split(x.size(-1), dim=2)
        hs = x.size(-1) // nh
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))         # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        y = att @ v                                                                 # (B, nh, T, hs)
        if i == layer:
            y[:, head] = value
        x = x + a.c_proj(y.transpose(1, 2).reshape(B, T, -1))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(tr.ln_f(x))


@torch.no_grad()
def test_zero_ablated_head_is_attention_recomputed_by_hand_without_it(gpt, ids):
    assert torch.allclose(hand_gpt(gpt, ids, 9, 0), gpt(ids)[0], atol=1e-5)       # the hand GPT is the GPT
    with ab.ablated(gpt, ab.Site("head", 1, 2)):
        got = gpt(ids)[0]
    want = hand_gpt(gpt, ids, 1, 2)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, gpt(ids)[0], atol=1e-3)                         # the knockout changed something


@torch.no_grad()
def test_mean_ablation_writes_the_mean_computed_by_hand(gpt, ids):
    site = ab.Site("head", 0, 1)
    y = {}
    h = gpt.transformer.h[0].attn.c_proj.register_forward_pre_hook(lambda m, i: y.__setitem__("y", i[0]))
    gpt(ids)
    h.remove()
    hs = gpt.config.n_embd // gpt.config.n_head
    mean = y["y"][0, :, hs:2 * hs].mean(0)                                         # (hs,) over the positions
    means = ab.site_means(gpt, ids, [site])
    assert torch.allclose(means[site], mean, atol=1e-6)
    with ab.ablated(gpt, site, mode="mean", means=means):
        got = gpt(ids)[0]
    assert torch.allclose(got, hand_gpt(gpt, ids, 0, 1, mean), atol=1e-5)


@torch.no_grad()
def test_each_batch_row_loses_its_own_part(gpt, ids):
    rows = [None, ab.Site("head", 0, 3), ab.Site("neuron", 1, 5), ab.Site("head", 1, 0)]
    with ab.ablated(gpt, rows):
        got = gpt(ids.expand(4, -1))[0]
    assert torch.allclose(got[0], gpt(ids)[0][0], atol=1e-5)
    for b in (1, 2, 3):
        with ab.ablated(gpt, rows[b]):
            assert torch.allclose(got[b], gpt(ids)[0][0], atol=1e-5)


@torch.no_grad()
def test_neuron_knockout_zeroes_one_gelu_unit(gpt, ids):
    mlp = gpt.transformer.h[0].mlp
    with ab.ablated(gpt, ab.Site("neuron", 0, 7)), capture(gpt, ["transformer.h.0.mlp"]) as acts:
        gpt(ids)
    with capture(gpt, ["transformer.h.0.ln_2"]) as ln:
        gpt(ids)
    hidden = F.gelu(mlp.c_fc(ln["transformer.h.0.ln_2"]))
    hidden[..., 7] = 0
    assert torch.allclose(acts["transformer.h.0.mlp"], mlp.c_proj(hidden), atol=1e-6)


@torch.no_grad()
def test_vit_head_knockout_equals_zeroing_its_columns_of_c_proj():
    torch.manual_seed(0)
    vit = ViT(ViTConfig(patch_size=7, n_embd=16, n_layer=2, n_head=2)).eval()
    x = torch.rand(2, 1, 28, 28)
    with ab.ablated(vit, ab.Site("head", 1, 1)):
        got = vit(x)[0]
    cut = ViT(vit.config).eval()
    cut.load_state_dict(vit.state_dict())
    cut.blocks[1].attn.c_proj.weight[:, 8:16] = 0                                   # W y = sum over heads of W_h y_h
    assert torch.allclose(got, cut(x)[0], atol=1e-5)
    change, clean = ab.image_knockout(vit, x[:1], 3, ab.heads(vit))
    assert change.shape == (4,) and math.isclose(clean, float(vit(x[:1])[0][0, 3]), abs_tol=1e-5)
    assert math.isclose(change[3], float(got[0, 3]) - clean, abs_tol=1e-5)


@torch.no_grad()
def test_cnn_channel_knockout_by_hand(cnn):
    x = torch.rand(1, 3 if cnn.config.in_channels == 3 else cnn.config.in_channels, 16, 16)
    z = (x - cnn.mean) / cnn.std
    z = cnn.features.stem(z)
    z[:, 2] = 0
    for name in ("stage1", "stage2", "stage3"):
        z = getattr(cnn.features, name)(z)
    want = cnn.classifier(z)
    with ab.ablated(cnn, ab.Site("channel", 0, 2)):
        got = cnn(x)[0]
    assert torch.allclose(got, want, atol=1e-5)
    site = ab.Site("channel", 1, 3)
    with capture(cnn, ["features.stage1"]) as acts:
        cnn(x)
    means = ab.site_means(cnn, x, [site])
    assert torch.allclose(means[site], acts["features.stage1"][:, 3].mean())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@torch.no_grad()
def test_cell_knockout_inside_the_recurrence_matches_a_cell_by_cell_run(cell):
    torch.manual_seed(0)
    m = CharRNN(replace(RNN_PRESETS["tiny"], cell=cell, vocab_size=9, n_layer=2)).eval()
    idx = torch.randint(0, 9, (1, 10))
    assert torch.allclose(ab.rnn_logits(m, idx, [None]), m(idx)[0], atol=1e-5)   # no knockout: nn.LSTM/GRU's answer
    site = ab.Site("cell", 1, 4)
    H = m.config.n_hidden
    steps = []
    for L in range(2):
        ref = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(H if L else m.config.n_embd, H)
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, p).copy_(getattr(m.rnn, f"{p}_l{L}"))
        steps.append(ref)
    x = m.wte(idx)[0]
    for L, ref in enumerate(steps):
        h, c, out = torch.zeros(1, H), torch.zeros(1, H), []
        for t in range(x.size(0)):
            if cell == "lstm":
                h, c = ref(x[t:t + 1], (h, c))
            else:
                h = ref(x[t:t + 1], h)
            if L == site.layer:
                h, c = h.clone(), c.clone()
                h[0, 4] = 0
                c[0, 4] = 0
            out.append(h)
        x = torch.cat(out)
    want = m.lm_head(x)[None]
    got = ab.rnn_logits(m, idx, [None, site])
    assert torch.allclose(got[1:], want, atol=1e-5) and not torch.allclose(got[0], want[0], atol=1e-3)
    means = ab.site_means(m, idx, [site])
    _, states = m.forward_with_states(idx)
    assert torch.allclose(means[site], torch.stack([states["h"][0, :, 1, 4].mean(), states["c"][0, :, 1, 4].mean()])
                          if cell == "lstm" else states["h"][0, :, 1, 4].mean().repeat(2))


def test_windows_score_every_position_once():
    for T, block in [(10, 16), (256, 128), (300, 128), (129, 128)]:
        seen = []
        for s, first in ab.windows(T, block):
            seen += list(range(s + first, min(s + block, T)))
        assert seen == list(range(T))


@torch.no_grad()
def test_knockout_map_is_one_knockout_at_a_time_over_a_text_longer_than_the_context(gpt):
    torch.manual_seed(2)
    ids = torch.randint(0, 11, (40,)).tolist()                                      # block_size 16: 3+ windows
    sites = ab.heads(gpt)
    mask = np.zeros(39, bool)
    mask[[3, 20, 38]] = True
    k = ab.knockout_map(gpt, ids, sites, mask, batch=3)
    idx = torch.tensor(ids)[None]
    clean = ab.next_char_logprobs(gpt, ids, [None])[0]
    for p in range(39):               # every prediction read from a window that holds it and half a block before it
        starts = range(max(0, p - 14), p + 1 - min(p, 7))
        assert any(math.isclose(float(clean[p]), float(F.log_softmax(gpt(idx[:, s:s + 16])[0], -1)[0, p - s, ids[p + 1]]),
                                abs_tol=1e-5) for s in starts), p
    for i in (0, 5, 7):
        one = ab.next_char_logprobs(gpt, ids, [sites[i]])[0]
        assert math.isclose(k.effect[i], float((one - clean)[mask].mean()), abs_tol=1e-5)
    assert math.isclose(k.clean, float(clean[mask].mean()), abs_tol=1e-5)
    with pytest.raises(ValueError, match="does not occur"):
        ab.knockout_map(gpt, ids, sites, np.zeros(39, bool))


def test_behaviours_mark_the_position_before_the_character():
    text = 'He said "go"\nnow'
    assert np.flatnonzero(ab.behaviour_mask("closing a quote", text)).tolist() == [10]   # text[11] closes it
    assert np.flatnonzero(ab.behaviour_mask("ending a line", text)).tolist() == [11]
