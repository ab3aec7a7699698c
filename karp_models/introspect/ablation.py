"""Knock a part of a model out and measure what breaks: zero- and mean-ablation of a GPT or ViT attention
head, a GPT MLP neuron, a CNN channel or an LSTM/GRU cell, one part per batch row so a whole knockout map
(every head, every cell) runs as a few batched forwards.

Heads, neurons and channels are replaced by forward hooks that remove themselves (hooks.capture's style);
a recurrent cell is knocked out inside the recurrence, so the step loop runs here over the module's own
weights (the gate equations of rnn.CharRNN.forward_with_states), with the cell's h (and c) replaced at
every step.

Cites: Olsson et al. 2022 "In-context Learning and Induction Heads" and Wang et al. 2022 "Interpretability
in the Wild" (IOI; head knockouts, mean-ablation), Meyes et al. 2019 "Ablation Studies in Artificial Neural
Networks", Karpathy, Johnson and Fei-Fei 2015 (the quote and line cells these maps look for).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.i18n import N_
from karp_models.introspect.hooks import capture, layer as get_layer

Progress = Callable[[float], None]
KINDS = ("head", "neuron", "channel", "cell")
MODES = {"zero": N_("zero"), "mean": N_("mean")}

# ---------------------------------------------------------------------------- sites


@dataclass(frozen=True)
class Site:
    """One part to knock out.

    kind: 'head' (GPT or ViT attention head: its output before the output projection c_proj),
        'neuron' (a GPT/ViT MLP unit after its GELU), 'channel' (a CNN feature map of
        model.feature_layers[layer]) or 'cell' (a recurrent unit: h, and c for an LSTM).
    layer: block, feature-layer or recurrent-layer index; index: head, unit, channel or cell.
    """
    kind: str
    layer: int
    index: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown site kind {self.kind!r}; choose from {KINDS}")


def _blocks(model: nn.Module) -> str:
    return "transformer.h" if hasattr(model, "transformer") else "blocks"


def module_name(model: nn.Module, site: Site) -> str:
    """The submodule whose input (head) or output (neuron, channel) the hook replaces."""
    if site.kind == "head":
        return f"{_blocks(model)}.{site.layer}.attn.c_proj"
    if site.kind == "neuron":
        return f"{_blocks(model)}.{site.layer}.mlp.gelu"
    if site.kind == "channel":
        return model.feature_layers[site.layer]
    raise ValueError("a recurrent cell has no module of its own: use rnn_logits")


def _index(model: nn.Module, site: Site) -> slice:
    """The slice of the last (head, neuron) or channel (dim 1) axis this site owns."""
    if site.kind == "head":
        n_head = get_layer(model, f"{_blocks(model)}.{site.layer}.attn").n_head
        hs = get_layer(model, module_name(model, site)).in_features // n_head
        if not 0 <= site.index < n_head:
            raise IndexError(f"head {site.index} out of range (layer has {n_head})")
        return slice(site.index * hs, (site.index + 1) * hs)
    return slice(site.index, site.index + 1)


def heads(model: nn.Module) -> list[Site]:
    """Every attention head of a GPT or ViT, layer by layer."""
    blocks = get_layer(model, _blocks(model))
    return [Site("head", i, h) for i, b in enumerate(blocks) for h in range(b.attn.n_head)]


def cells(model: nn.Module) -> list[Site]:
    """Every cell of every layer of a CharRNN."""
    c = model.config
    return [Site("cell", i, j) for i in range(c.n_layer) for j in range(c.n_hidden)]


def channels(model: nn.Module, layer: int, n: int) -> list[Site]:
    """The n channels of a CNN's feature layer `layer` (n: its width)."""
    return [Site("channel", layer, j) for j in range(n)]

# ---------------------------------------------------------------------------- hooks


def _put(t: torch.Tensor, site: Site, sl: slice, rows: list[int], value: torch.Tensor | float) -> torch.Tensor:
    t = t.clone()
    r = torch.as_tensor(rows, device=t.device)
    if site.kind == "channel":
        t[r, sl] = value if not torch.is_tensor(value) else value.view(1, -1, 1, 1).to(t.dtype)
    else:
        t[r, ..., sl] = value if not torch.is_tensor(value) else value.to(t.dtype)
    return t


@contextmanager
def ablated(model: nn.Module, rows: Sequence[Site | None] | Site, *, mode: str = "zero",
            means: dict[Site, torch.Tensor] | None = None) -> Iterator[None]:
    """Run the model with parts knocked out: `with ablated(model, [None, s1, s2]): model(x)` where x has 3
    rows; row b loses rows[b] (None: nothing, the clean run). A single Site knocks out the same part in
    every row. mode 'zero' writes 0, 'mean' writes means[site] (site_means). Only forwards of the calling
    thread are changed (a cached model may serve other sessions at the same time); hooks are removed on
    exit. Recurrent cells are not hooks: use rnn_logits."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {tuple(MODES)}, not {mode!r}")
    owner, handles = threading.get_ident(), []
    groups: dict[str, list[tuple[Site, int | None]]] = {}
    for b, s in ([(None, rows)] if isinstance(rows, Site) else enumerate(rows)):
        if s is not None:
            groups.setdefault(module_name(model, s), []).append((s, b))

    def apply(t: torch.Tensor, items: list[tuple[Site, int | None]]) -> torch.Tensor:
        for s, b in items:
            value = 0.0 if mode == "zero" else means[s]
            t = _put(t, s, _index(model, s), list(range(t.shape[0])) if b is None else [b], value)
        return t

    def hook_for(items, pre: bool):
        def pre_hook(_m, inp):
            return None if threading.get_ident() != owner else (apply(inp[0], items),) + tuple(inp[1:])

        def post_hook(_m, _inp, out):
            return None if threading.get_ident() != owner else apply(out, items)
        return pre_hook if pre else post_hook

    try:
        for name, items in groups.items():
            m = get_layer(model, name)
            if items[0][0].kind == "head":
                handles.append(m.register_forward_pre_hook(hook_for(items, pre=True)))
            else:
                handles.append(m.register_forward_hook(hook_for(items, pre=False)))
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def site_means(model: nn.Module, x: torch.Tensor, sites: Sequence[Site]) -> dict[Site, torch.Tensor]:
    """Each site's mean activation over a reference input x (every row and position): a head's (hs,)
    output vector, a neuron's or channel's scalar, a cell's (2,) mean of (h, c) (c = h for RNN/GRU)."""
    out: dict[Site, torch.Tensor] = {}
    rnn_sites = [s for s in sites if s.kind == "cell"]
    if rnn_sites:
        _, states = model.forward_with_states(x)                       # each (B, T, L, H)
        c = states.get("c", states["h"])
        for s in rnn_sites:
            out[s] = torch.stack([states["h"][..., s.layer, s.index].mean(), c[..., s.layer, s.index].mean()])
    other = [s for s in sites if s.kind != "cell"]
    if other:
        names = sorted({module_name(model, s) for s in other})
        inputs: dict[str, torch.Tensor] = {}
        hooks = [get_layer(model, n).register_forward_pre_hook(lambda m, i, n=n: inputs.__setitem__(n, i[0]))
                 for n in names if n.endswith("c_proj")]
        try:
            with capture(model, [n for n in names if not n.endswith("c_proj")]) as acts:
                model(x)
        finally:
            for h in hooks:
                h.remove()
        acts |= inputs
        for s in other:
            a = acts[module_name(model, s)][..., _index(model, s)] if s.kind != "channel" else \
                acts[module_name(model, s)][:, _index(model, s)]
            out[s] = a.mean(dim=tuple(range(a.dim() - 1))) if s.kind == "head" else a.mean()
    return out

# ---------------------------------------------------------------------------- recurrent cells


@torch.no_grad()
def rnn_logits(model: nn.Module, idx: torch.Tensor, rows: Sequence[Site | None], *, mode: str = "zero",
               means: dict[Site, torch.Tensor] | None = None) -> torch.Tensor:
    """Logits (B, T, V) of a CharRNN on idx (B, T) or (1, T) (repeated to len(rows)), row b with cell rows[b]
    knocked out at every step: its h (and an LSTM's c) replaced by 0 or by means[site] before the next step
    reads it, so the knockout acts inside the recurrence, not only on the way to the head."""
    c, rnn = model.config, model.rnn
    B = len(rows)
    idx = idx.expand(B, -1) if idx.size(0) == 1 else idx
    x = model.wte(idx)                                                 # (B, T, E)
    T = x.size(1)
    for L in range(c.n_layer):
        W_hh_T = getattr(rnn, f"weight_hh_l{L}").T.contiguous()       # (H, G*H)
        b_hh = getattr(rnn, f"bias_hh_l{L}")
        xw = x @ getattr(rnn, f"weight_ih_l{L}").T + getattr(rnn, f"bias_ih_l{L}")   # (B, T, G*H)
        if c.cell != "gru":                                            # GRU keeps b_hn apart (r * (W_hn h + b_hn))
            xw = xw + b_hh
        xw = xw.transpose(0, 1).contiguous()                           # (T, B, G*H): one step is contiguous
        mine = [(b, s) for b, s in enumerate(rows) if s is not None and s.layer == L]
        r = torch.tensor([b for b, _ in mine], dtype=torch.long)
        j = torch.tensor([s.index for _, s in mine], dtype=torch.long)
        vals = (torch.zeros(len(mine), 2) if mode == "zero" else
                torch.stack([means[s] for _, s in mine]) if mine else torch.zeros(0, 2)).to(x.dtype)
        H = c.n_hidden
        h, cell = x.new_zeros(B, H), x.new_zeros(B, H)
        out = []
        for t in range(T):
            if c.cell == "lstm":
                gates = torch.addmm(xw[t], h, W_hh_T)                  # (B, 4H): i, f, g, o
                sg = torch.sigmoid(gates)
                cell = sg[:, H:2 * H] * cell + sg[:, :H] * torch.tanh(gates[:, 2 * H:3 * H])
                if mine:
                    cell[r, j] = vals[:, 1]
                h = sg[:, 3 * H:] * torch.tanh(cell)
            elif c.cell == "gru":
                hw = torch.addmm(b_hh, h, W_hh_T)                      # (B, 3H)
                rz = torch.sigmoid(xw[t, :, :2 * H] + hw[:, :2 * H])
                n = torch.tanh(xw[t, :, 2 * H:] + rz[:, :H] * hw[:, 2 * H:])
                z = rz[:, H:]
                h = (1 - z) * n + z * h
            else:
                h = torch.tanh(torch.addmm(xw[t], h, W_hh_T))
            if mine:
                h[r, j] = vals[:, 0]
            out.append(h)
        x = torch.stack(out, dim=1)                                    # (B, T, H)
    return model.lm_head(x)                                            # (B, T, V)

# ---------------------------------------------------------------------------- behaviours over a text


def _closing_quote(text: str) -> np.ndarray:
    inside, out = False, np.zeros(len(text), bool)
    for t, ch in enumerate(text):
        if ch == '"':
            out[t], inside = inside, not inside
        elif ch in "“「":
            inside = True
        elif ch in "”」":
            out[t], inside = True, False
    return out


BEHAVIOURS: dict[str, Callable[[str], np.ndarray]] = {
    N_("closing a quote"): _closing_quote,
    N_("ending a line"): lambda text: np.array([ch == "\n" for ch in text], bool),
    N_("ending a phrase"): lambda text: np.array([ch in "，。？！；,.?!;" for ch in text], bool),
    N_("every character"): lambda text: np.ones(len(text), bool),
}


def behaviour_mask(name: str, text: str) -> np.ndarray:
    """(T - 1,) bool: the positions t whose next character text[t + 1] shows the behaviour (a closing quote,
    a newline, a phrase mark, or any)."""
    return BEHAVIOURS[name](text)[1:]


def windows(T: int, block: int | None) -> list[tuple[int, int]]:
    """(start, first scored) windows of `block` items covering T items (None: no limit): overlapping by half
    a block, each item scored once, in the window where it has the most before it (the strided evaluation of
    Hugging Face's perplexity guide). For next-character predictions pass T - 1 predictions and a block of
    block_size - 1: the window starting at s reads characters s .. s + block_size - 1."""
    if block is None or T <= block:
        return [(0, 0)]
    stride = block // 2
    starts = list(range(0, T - block, stride)) + [T - block]
    return [(s, 0 if k == 0 else starts[k - 1] + block - s) for k, s in enumerate(starts)]


@torch.no_grad()
def next_char_logprobs(model: nn.Module, ids: Sequence[int], rows: Sequence[Site | None], *, mode: str = "zero",
                       means: dict[Site, torch.Tensor] | None = None) -> torch.Tensor:
    """(B, T - 1): log-probability of each actual next character ids[t + 1] at every position t, row b with
    rows[b] knocked out. A GPT reads a text longer than its context in overlapping windows (windows())."""
    idx = torch.as_tensor(list(ids), dtype=torch.long, device=next(model.parameters()).device)
    T, B = idx.numel(), len(rows)
    out = idx.new_zeros(B, T - 1, dtype=torch.float32)
    if hasattr(model, "rnn"):
        lp = F.log_softmax(rnn_logits(model, idx[None], rows, mode=mode, means=means).float(), -1)   # (B, T, V)
        return lp[:, :-1].gather(2, idx[1:].expand(B, -1)[..., None])[..., 0]
    block = model.config.block_size
    for s, first in windows(T - 1, block - 1):                                # over the T - 1 predictions
        w = idx[s:s + block][None].expand(B, -1)                              # (B, t): t - 1 predictions
        with ablated(model, rows, mode=mode, means=means):
            lp = F.log_softmax(model(w)[0].float(), -1)                        # (B, t, V)
        got = lp[:, :-1].gather(2, w[:, 1:, None])[..., 0]                    # (B, t - 1)
        out[:, s + first:s + w.size(1) - 1] = got[:, first:]
    return out


@dataclass(frozen=True)
class Knockout:
    """A knockout map over a text. sites: the parts, in order; effect: (n_sites,) change of the mean
    log-probability of the behaviour's characters when that part is knocked out (negative: the model needs
    it); clean: the clean mean log-probability; per_position: (n_sites, T - 1) change at each position;
    mask: (T - 1,) the positions the behaviour scores; clean_logprobs: (T - 1,) the clean run's log-probability
    of every next character."""
    sites: list[Site]
    effect: np.ndarray
    clean: float
    per_position: np.ndarray
    mask: np.ndarray
    clean_logprobs: np.ndarray


def knockout_map(model: nn.Module, ids: Sequence[int], sites: Sequence[Site], mask: np.ndarray, *,
                 mode: str = "zero", batch: int = 32, progress: Progress | None = None) -> Knockout:
    """Knock out every site in turn (batch of them per forward, the clean run in row 0 of each) and score
    the behaviour: the mean log-probability of the next character at the positions in mask (T - 1,).
    Mean-ablation takes its means over this text. Raises ValueError when mask selects nothing."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("the behaviour does not occur in this text")
    means = None
    if mode == "mean":
        idx = torch.as_tensor(list(ids), dtype=torch.long)
        block = getattr(model.config, "block_size", None) if hasattr(model, "transformer") else None
        ref = torch.stack([idx[s:s + block] for s, _ in windows(len(idx), block)]) if block else idx[None]
        means = site_means(model, ref, sites)
    m = torch.from_numpy(mask)
    rows_out, clean = [], None
    for k in range(0, len(sites), batch):
        chunk = list(sites[k:k + batch])
        lp = next_char_logprobs(model, ids, [None] + chunk, mode=mode, means=means)   # (1 + b, T - 1)
        clean = lp[0]
        rows_out.append(lp[1:] - clean)
        if progress:
            progress(min(1.0, (k + len(chunk)) / len(sites)))
    per = torch.cat(rows_out).numpy()                                  # (n_sites, T - 1)
    return Knockout(list(sites), per[:, mask].mean(1), float(clean[m].mean()), per, mask, clean.numpy())

# ---------------------------------------------------------------------------- images


@torch.no_grad()
def image_knockout(model: nn.Module, x: torch.Tensor, target: int, sites: Sequence[Site], *, mode: str = "zero",
                   reference: torch.Tensor | None = None, batch: int = 64) -> tuple[np.ndarray, float]:
    """The class score (logit of `target`) of one image x (1, C, H, W) with each site knocked out (a CNN
    channel or a ViT head): returns (n_sites,) change of the score and the clean score. Mean-ablation
    takes means over `reference` (N, C, H, W), e.g. some test images (default: x itself)."""
    means = site_means(model, reference if reference is not None else x, sites) if mode == "mean" else None
    out, clean = [], 0.0
    for k in range(0, len(sites), batch):
        chunk = [None] + list(sites[k:k + batch])
        with ablated(model, chunk, mode=mode, means=means):
            score = model(x.expand(len(chunk), *x.shape[1:]))[0][:, target].float()
        clean = float(score[0])
        out.append(score[1:] - score[0])
    return torch.cat(out).numpy(), clean
