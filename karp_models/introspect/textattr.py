"""Which earlier characters made a char GPT or LSTM predict the next one: integrated gradients on the
character embeddings (Captum), plain or contrastive (why this character and not that one), and the same
question asked three ways side by side (attention, gradient, knocking the character out) with their rank
agreement.

Cites: Sundararajan et al. 2017 "Axiomatic Attribution for Deep Networks" (IG, completeness), pytorch/captum
IntegratedGradients (Captum's LLMGradientAttribution wants a Hugging Face tokenizer and generate(), which a
character model does not have, so IG runs on the embedding layer's output, as its LayerIntegratedGradients
does, with an all-zero embedding as the baseline), Yin and Neubig 2022 "Interpreting Language Models with
Contrastive Explanations", Jain and Wallace 2019 "Attention is not Explanation" (Kendall's tau between
attention, gradients and leave-one-out).
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from captum.attr import IntegratedGradients
from scipy import stats

from karp_models.i18n import N_
from karp_models.introspect.attention import rollout


def _embedding(model: nn.Module) -> nn.Module:
    return model.transformer.wte if hasattr(model, "transformer") else model.wte


def context(model: nn.Module, ids: Sequence[int], position: int) -> tuple[int, list[int]]:
    """The characters the model reads to predict the one after `position`: (first index, their ids); a GPT
    reads at most block_size of them."""
    block = model.config.block_size if hasattr(model, "transformer") else None
    first = max(0, position + 1 - block) if block else 0
    return first, list(ids[first:position + 1])


class _Score(nn.Module):
    """f(embeddings) = logit(target) - logit(foil) at the last position, the embeddings of the last
    emb.size(1) characters put in place of the embedding layer's output by a hook (calling thread only);
    the characters before them keep their own embeddings."""

    def __init__(self, model: nn.Module, idx: torch.Tensor, target: int, foil: int | None, cut: int = 0) -> None:
        super().__init__()
        self.model, self.idx, self.target, self.foil = model, idx, target, foil
        self.owner = threading.get_ident()
        self.state = None                  # a recurrent model reads the fixed characters once: their final state
        if cut and hasattr(model, "rnn"):
            with torch.no_grad():
                self.state = model._run(idx[:, :cut])[1]

    def _rnn(self, emb: torch.Tensor) -> torch.Tensor:                # the last cut: characters from the state
        n = emb.size(0)
        state = (tuple(s.expand(-1, n, -1).contiguous() for s in self.state) if isinstance(self.state, tuple)
                 else self.state.expand(-1, n, -1).contiguous())
        out, _ = self.model.rnn(self.model.drop(emb), state)          # (n, t, H)
        return self.model.lm_head(self.model.drop(out[:, -1])).float()   # (n, V)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:             # (n, t, E) -> (n,)
        if self.state is not None:
            last = self._rnn(emb)
            return last[:, self.target] - (last[:, self.foil] if self.foil is not None else 0.0)

        def swap(_m, _i, out):
            if threading.get_ident() != self.owner:
                return None
            return torch.cat([out[:, :out.size(1) - emb.size(1)], emb], dim=1)   # (n, T, E)
        h = _embedding(self.model).register_forward_hook(swap)
        try:
            last = self.model(self.idx.expand(emb.size(0), -1))[0][:, -1].float()   # (n, V)
        finally:
            h.remove()
        return last[:, self.target] - (last[:, self.foil] if self.foil is not None else 0.0)


@dataclass(frozen=True)
class Attribution:
    """IG over a context. first: index in the text of the first character read; scores: (t,) one value per
    character (IG summed over the embedding); value: f(text); base: f(all-zero embeddings); delta: Captum's
    convergence delta, sum(scores) - (value - base)."""
    first: int
    scores: np.ndarray
    value: float
    base: float
    delta: float


def next_char_attribution(model: nn.Module, ids: Sequence[int], position: int, target: int,
                          foil: int | None = None, *, n_steps: int = 64, last: int | None = None) -> Attribution:
    """Integrated gradients of logit(target) (minus logit(foil) in contrastive mode) at `position`, i.e. for
    the character after ids[position], with respect to the embeddings of the characters read so far (only
    the `last` of them, when given: the ones before keep their embeddings); the baseline is those embeddings
    zero (a GPT keeps its position embeddings). Completeness: scores sum to value - base up to delta.

    An LSTM's path from zero embeddings to a long text is rough: over 128 characters 64 steps leave a delta
    of ~40% of value - base on the shipped LSTM, over 16 characters ~0.01%; pass `last` for it."""
    first, ctx = context(model, ids, position)
    idx = torch.as_tensor(ctx, dtype=torch.long, device=next(model.parameters()).device)[None]   # (1, T)
    cut = idx.size(1) - last if last is not None and last < idx.size(1) else 0   # characters kept as they are
    f = _Score(model, idx, target, foil, cut)
    with torch.no_grad():
        emb = _embedding(model)(idx).detach()[:, cut:]                 # (1, t, E): the ones attributed
        value, base = float(f(emb)[0]), float(f(torch.zeros_like(emb))[0])
    attr, delta = IntegratedGradients(f).attribute(emb, baselines=torch.zeros_like(emb), n_steps=n_steps,
                                                   internal_batch_size=32, return_convergence_delta=True)
    return Attribution(first + cut, attr[0].sum(-1).detach().float().cpu().numpy(), value, base, float(delta[0]))


@torch.no_grad()
def occlusion(model: nn.Module, ids: Sequence[int], position: int, target: int,
              foil: int | None = None) -> tuple[int, np.ndarray]:
    """Knock each character of the context out (its embedding zero, IG's baseline) in one batch: (first,
    (t,) drop of the score, f(text) - f(text without that character); positive: it helped)."""
    first, ctx = context(model, ids, position)
    idx = torch.as_tensor(ctx, dtype=torch.long, device=next(model.parameters()).device)[None]
    t = idx.size(1)
    emb = _embedding(model)(idx)                                       # (1, t, E)
    rows = emb.expand(t + 1, -1, -1).clone()                           # row 0 clean, row s + 1 without s
    rows[torch.arange(1, t + 1), torch.arange(t)] = 0.0
    s = _Score(model, idx, target, foil)(rows)
    return first, (s[0] - s[1:]).cpu().numpy()


METHODS = (N_("attention"), N_("gradient (IG)"), N_("knockout"))


@dataclass(frozen=True)
class SideBySide:
    """Three answers to "which characters mattered" for one prediction of a GPT, over the context (t,):
    attention (rollout over layers, the row of the predicting position), |IG| and |knockout drop|; rank
    agreement per pair: {(a, b): (Spearman rho, Kendall tau)}."""
    first: int
    scores: dict[str, np.ndarray]
    agreement: dict[tuple[str, str], tuple[float, float]]


def side_by_side(model: nn.Module, ids: Sequence[int], position: int, target: int, *,
                 n_steps: int = 64) -> SideBySide:
    """Attention, gradient and knockout for the prediction after ids[position] (target: the character id
    scored), and how far their rankings of the context agree (scipy.stats.spearmanr and kendalltau)."""
    first, ctx = context(model, ids, position)
    with torch.no_grad():
        _, maps = model.forward_with_attention(torch.as_tensor(ctx)[None])
    att = rollout(maps)[0, -1].cpu().numpy()                           # (t,) what the last position draws on
    ig = np.abs(next_char_attribution(model, ids, position, target, n_steps=n_steps).scores)
    ko = np.abs(occlusion(model, ids, position, target)[1])
    scores = dict(zip(METHODS, (att, ig, ko)))
    agree = {}
    for i, a in enumerate(METHODS):
        for b in METHODS[i + 1:]:
            agree[(a, b)] = (float(stats.spearmanr(scores[a], scores[b]).statistic),
                             float(stats.kendalltau(scores[a], scores[b]).statistic))
    return SideBySide(first, scores, agree)
