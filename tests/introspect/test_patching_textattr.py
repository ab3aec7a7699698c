"""Activation patching (all layers from the clean run give the clean output exactly), the logit lens (its last
layer is the model's own output) and next-character attribution (IG's completeness, also contrastive;
knocking a character out against a run without it; rank agreement from scipy)."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from karp_models.introspect import patching as pt
from karp_models.introspect import textattr as ta
from karp_models.models.attention import GPT, GPT_PRESETS
from karp_models.models.rnn import PRESETS as RNN_PRESETS, CharRNN


@pytest.fixture(scope="module")
def gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(replace(GPT_PRESETS["nano"], vocab_size=11, n_layer=3, n_head=2, block_size=16)).eval()


CLEAN = [1, 4, 2, 7, 3, 3, 9, 5]
CORRUPT = [1, 4, 6, 7, 3, 3, 9, 5]                                                  # one character changed


@torch.no_grad()
def test_patching_every_layer_from_the_clean_run_gives_the_clean_output_exactly(gpt):
    clean, resid, heads = pt.run_with_cache(gpt, CLEAN)
    T = len(CLEAN)
    every = [(name, 0, slice(None), slice(None), resid[i][0]) for i, name in enumerate(pt.resid_names(gpt))]
    with pt.patched(gpt, every):
        got = gpt(torch.tensor([CORRUPT]))[0]
    assert torch.equal(got, clean)
    with pt.patched(gpt, every[:1]):                                               # the embeddings alone suffice
        assert torch.equal(gpt(torch.tensor([CORRUPT]))[0], clean)
    with pt.patched(gpt, [(f"transformer.h.{L}.attn.c_proj", 0, slice(None), slice(None), heads[L][0])
                          for L in range(3)]):                                     # heads alone do not: MLPs read x
        assert not torch.allclose(gpt(torch.tensor([CORRUPT]))[0], clean)
    assert resid[0].shape == (1, T, gpt.config.n_embd)


@torch.no_grad()
def test_patching_grid_runs_from_corrupt_to_clean(gpt):
    logits = gpt(torch.tensor([CLEAN]))[0][0, -1]
    answer = int(logits.argmax())
    foil = int(logits.argsort()[-2])
    p = pt.activation_patching(gpt, CLEAN, CORRUPT, answer, foil)
    assert p.resid.shape == (4, 8) and p.heads.shape == (3, 2)
    assert math.isclose(p.clean, float(logits[answer] - logits[foil]), rel_tol=1e-5)
    assert math.isclose(p.resid[-1, -1], 1.0, abs_tol=1e-4)                       # the last point at the last position
    assert math.isclose(p.resid[0, 2], 1.0, abs_tol=1e-4)                         # the changed character itself
    assert np.allclose(p.resid[0, [0, 1, 3, 4, 5, 6, 7]], 0.0, atol=1e-4)         # the same characters: nothing
    with pytest.raises(ValueError, match="equally long"):
        pt.activation_patching(gpt, CLEAN, CORRUPT[:-1], answer, foil)


@torch.no_grad()
def test_logit_lens_at_the_last_layer_is_the_model_s_output(gpt):
    lens_logits = pt.logit_lens_logits(gpt, CLEAN)                                 # (L + 1, T, V)
    assert lens_logits.shape == (4, 8, 11)
    assert torch.allclose(lens_logits[-1], gpt(torch.tensor([CLEAN]))[0][0], atol=1e-6)
    lens = pt.logit_lens(gpt, CLEAN, k=3)
    p = F.softmax(gpt(torch.tensor([CLEAN]))[0][0], -1)
    assert np.array_equal(lens.ids[-1, :, 0], p.argmax(-1).numpy())
    assert np.allclose(lens.probs[-1, :, 0], p.max(-1).values.numpy(), atol=1e-6)
    # row 0 is the embeddings read through ln_f and the head, nothing else
    tr = gpt.transformer
    emb = tr.wte(torch.tensor(CLEAN)) + tr.wpe(torch.arange(8))
    assert torch.allclose(lens_logits[0], gpt.lm_head(tr.ln_f(emb)), atol=1e-6)


@pytest.mark.parametrize("family", ["gpt", "lstm"])
@pytest.mark.parametrize("foil", [None, 3])
def test_integrated_gradients_are_complete(gpt, family, foil):
    torch.manual_seed(0)
    model = gpt if family == "gpt" else CharRNN(replace(RNN_PRESETS["tiny"], vocab_size=11)).eval()
    ids = CLEAN * 3                                                                # 24 > the GPT's 16: a window
    a = ta.next_char_attribution(model, ids, 20, target=5, foil=foil, n_steps=128)
    assert a.first == (5 if family == "gpt" else 0) and len(a.scores) == 21 - a.first
    gap = a.value - a.base
    assert abs(a.scores.sum() - gap) <= 0.01 * abs(gap) + 1e-3                    # sums to the score's change
    with torch.no_grad():
        last = model(torch.tensor([ids[a.first:21]]))[0][0, -1]
    want = last[5] - (last[foil] if foil is not None else 0)
    assert math.isclose(a.value, float(want), rel_tol=1e-5, abs_tol=1e-5)


def test_attributing_only_the_last_characters_keeps_the_others_and_stays_complete():
    torch.manual_seed(0)
    lstm = CharRNN(replace(RNN_PRESETS["tiny"], vocab_size=11)).eval()
    ids = CLEAN * 3
    a = ta.next_char_attribution(lstm, ids, 20, target=5, foil=3, last=6, n_steps=128)
    assert a.first == 15 and len(a.scores) == 6
    assert abs(a.scores.sum() - (a.value - a.base)) <= 0.01 * abs(a.value - a.base) + 1e-3
    with torch.no_grad():                                                          # base: only the last 6 zeroed
        emb = lstm.wte(torch.tensor([ids[:21]])).clone()
        emb[0, 15:] = 0
        h = lstm.wte.register_forward_hook(lambda m, i, o: emb)
        last = lstm(torch.tensor([ids[:21]]))[0][0, -1]
        h.remove()
    assert math.isclose(a.base, float(last[5] - last[3]), abs_tol=1e-5)


@torch.no_grad()
def test_occlusion_is_a_run_without_that_character(gpt):
    first, drop = ta.occlusion(gpt, CLEAN, 6, target=2, foil=4)
    emb = gpt.transformer.wte(torch.tensor([CLEAN[:7]])).clone()
    emb[0, 3] = 0
    h = gpt.transformer.wte.register_forward_hook(lambda m, i, o: emb)
    last = gpt(torch.tensor([CLEAN[:7]]))[0][0, -1]
    h.remove()
    full = gpt(torch.tensor([CLEAN[:7]]))[0][0, -1]
    assert first == 0 and drop.shape == (7,)
    assert math.isclose(drop[3], float((full[2] - full[4]) - (last[2] - last[4])), abs_tol=1e-5)


def test_side_by_side_rank_agreement_is_scipy_s(gpt):
    s = ta.side_by_side(gpt, CLEAN, 7, target=2, n_steps=32)
    att, ig, ko = (s.scores[m] for m in ta.METHODS)
    assert len(att) == len(ig) == len(ko) == 8 and math.isclose(att.sum(), 1.0, abs_tol=1e-5)
    rho, tau = s.agreement[("attention", "gradient (IG)")]
    assert math.isclose(rho, stats.spearmanr(att, ig).statistic) and math.isclose(tau, stats.kendalltau(att, ig).statistic)
    assert all(-1 <= v <= 1 for pair in s.agreement.values() for v in pair)
