"""Activation patching and the logit lens for the char GPT: copy activations of a clean text into the run of
a corrupted one (at one layer and position of the residual stream, or one head's output) and see how much of
the clean answer comes back; and read what each layer of the residual stream would already predict.

Cites: Meng et al. 2022 "Locating and Editing Factual Associations in GPT" (causal tracing), Wang et al. 2022
(IOI: patching head outputs), Heimersheim and Nanda 2024 "How to use and interpret activation patching" (the
normalised logit difference), nostalgebraist 2020 "interpreting GPT: the logit lens".
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.introspect.hooks import capture, layer as get_layer

# ---------------------------------------------------------------------------- the residual stream


def resid_names(model: nn.Module) -> list[str]:
    """The modules whose outputs are the residual stream: n_layer + 1 points, the embeddings (the input of
    block 0, transformer.drop) and the output of each block (the last one is what ln_f and the head read)."""
    return ["transformer.drop"] + [f"transformer.h.{i}" for i in range(model.config.n_layer)]


def _idx(model: nn.Module, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
    idx = torch.as_tensor(ids, dtype=torch.long, device=next(model.parameters()).device).reshape(1, -1)
    if idx.size(1) > model.config.block_size:
        raise ValueError(f"{idx.size(1)} characters is more than this GPT's context of {model.config.block_size}")
    return idx


@torch.no_grad()
def run_with_cache(model: nn.Module, ids: Sequence[int] | torch.Tensor
                   ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Logits (1, T, V), the residual stream [(1, T, C)] * (n_layer + 1) and every block's head outputs
    [(1, T, C)] * n_layer (the input of its attn.c_proj: heads side by side, head h in columns h*hs:(h+1)*hs)."""
    idx = _idx(model, ids)
    heads: dict[str, torch.Tensor] = {}
    names = [f"transformer.h.{i}.attn.c_proj" for i in range(model.config.n_layer)]
    hooks = [get_layer(model, n).register_forward_pre_hook(lambda m, i, n=n: heads.__setitem__(n, i[0].detach()))
             for n in names]
    try:
        with capture(model, resid_names(model)) as acts:
            logits = model(idx)[0]
    finally:
        for h in hooks:
            h.remove()
    return logits, [acts[n] for n in resid_names(model)], [heads[n] for n in names]


@contextmanager
def patched(model: nn.Module, patches: Sequence[tuple[str, int, slice | int, slice, torch.Tensor]]) -> Iterator[None]:
    """Run with activations overwritten: each patch (module, row, positions, columns, value) writes value into
    the module's output (a residual point from resid_names) or, for an attn.c_proj, into its input (head
    outputs), at batch row `row` (-1: every row), those positions and columns. Calling thread only; hooks
    removed on exit."""
    owner, handles = threading.get_ident(), []
    by_module: dict[str, list] = {}
    for p in patches:
        by_module.setdefault(p[0], []).append(p[1:])

    def write(t: torch.Tensor, items) -> torch.Tensor:
        t = t.clone()
        for row, pos, cols, value in items:
            rows = slice(None) if row < 0 else row
            t[rows, pos, cols] = value
        return t

    def make(name, items):
        if name.endswith("c_proj"):
            def pre(_m, inp):
                return None if threading.get_ident() != owner else (write(inp[0], items),)
            return get_layer(model, name).register_forward_pre_hook(pre)

        def post(_m, _inp, out):
            if threading.get_ident() != owner:
                return None
            return (write(out[0], items),) + tuple(out[1:]) if isinstance(out, tuple) else write(out, items)
        return get_layer(model, name).register_forward_hook(post)

    try:
        for name, items in by_module.items():
            handles.append(make(name, items))
        yield
    finally:
        for h in handles:
            h.remove()

# ---------------------------------------------------------------------------- patching


@dataclass(frozen=True)
class Patching:
    """Patching results. resid: (n_layer + 1, T) how much of the clean logit difference comes back when the
    residual stream at that point and position is copied from the clean run (0: as corrupted, 1: as clean);
    heads: (n_layer, n_head) the same for one head's output at every position; clean and corrupt: the logit
    difference logit(answer) - logit(foil) at the last position of each run."""
    resid: np.ndarray
    heads: np.ndarray
    clean: float
    corrupt: float


@torch.no_grad()
def activation_patching(model: nn.Module, clean: Sequence[int], corrupt: Sequence[int], answer: int,
                        foil: int) -> Patching:
    """Patch the clean text's activations into the corrupted text's run, one site at a time (one batched
    forward per layer), scoring the last position's logit(answer) - logit(foil), normalised so the corrupted
    run scores 0 and the clean run 1. Both texts must have the same length (at most block_size)."""
    if len(clean) != len(corrupt):
        raise ValueError(f"the clean text has {len(clean)} characters and the corrupted {len(corrupt)}: "
                         "patching pairs positions, so they must be equally long")
    c_logits, c_resid, c_heads = run_with_cache(model, clean)
    x_logits = model(_idx(model, corrupt))[0]
    diff = lambda lg: (lg[:, -1, answer] - lg[:, -1, foil]).float()   # noqa: E731
    lo, hi = float(diff(x_logits)[0]), float(diff(c_logits)[0])
    scale = hi - lo if abs(hi - lo) > 1e-6 else 1.0
    T, cfg = len(clean), model.config
    batch = _idx(model, corrupt).expand(T, -1)
    resid = np.zeros((cfg.n_layer + 1, T))
    for point, name in enumerate(resid_names(model)):
        with patched(model, [(name, t, t, slice(None), c_resid[point][0, t]) for t in range(T)]):
            resid[point] = ((diff(model(batch)[0]) - lo) / scale).cpu().numpy()
    hs = cfg.n_embd // cfg.n_head
    hd = np.zeros((cfg.n_layer, cfg.n_head))
    batch = batch[:cfg.n_head]
    for L in range(cfg.n_layer):
        cols = [slice(h * hs, (h + 1) * hs) for h in range(cfg.n_head)]
        with patched(model, [(f"transformer.h.{L}.attn.c_proj", h, slice(None), cols[h], c_heads[L][0, :, cols[h]])
                             for h in range(cfg.n_head)]):
            hd[L] = ((diff(model(batch)[0]) - lo) / scale).cpu().numpy()
    return Patching(resid, hd, hi, lo)

# ---------------------------------------------------------------------------- logit lens


@dataclass(frozen=True)
class Lens:
    """What each residual point would predict. probs: (n_layer + 1, T, k) the top-k probabilities after
    ln_f and the head; ids: (n_layer + 1, T, k) their characters' ids; row 0 reads the embeddings, row i the
    output of block i - 1, the last row is the model's own prediction."""
    probs: np.ndarray
    ids: np.ndarray


@torch.no_grad()
def logit_lens_logits(model: nn.Module, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """(n_layer + 1, T, V): lm_head(ln_f(residual)) at every residual point of one text."""
    _, resid, _ = run_with_cache(model, ids)
    x = torch.cat(resid)                                               # (n_layer + 1, T, C)
    return model.lm_head(model.transformer.ln_f(x))


def logit_lens(model: nn.Module, ids: Sequence[int] | torch.Tensor, k: int = 3) -> Lens:
    """The logit lens of a char GPT on one text (at most block_size characters): top-k per layer and position."""
    p = F.softmax(logit_lens_logits(model, ids).float(), -1)
    top = p.topk(k, dim=-1)
    return Lens(top.values.cpu().numpy(), top.indices.cpu().numpy())
