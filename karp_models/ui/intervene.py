"""The Knock it out page's sections: a knockout map over a behaviour and one part's effect along the text,
next-character attribution (plain or contrastive) with attention / gradient / knockout side by side,
activation patching between a clean and a corrupted text, and the logit lens. The maths is in
introspect.ablation, .patching and .textattr; computations are cached here per (model file, its mtime, input).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st
import torch

from karp_models.i18n import L_, _
from karp_models.introspect import ablation as ab
from karp_models.introspect import patching as pt
from karp_models.introspect import text as tx
from karp_models.introspect import textattr as ta
from karp_models.ui import cache, state, style
from karp_models.ui.figures import intervene as fig
from karp_models.ui.figures.text import color_legend_html, neuron_text_html, show_char
from karp_models.ui.models import load_model

GPT_LIMIT, RNN_LIMIT = 256, 128        # knockout-map texts: every head x 256 chars < 1 s; every LSTM cell x 128 ~ 6 s
RNN_IG_LAST = 24                       # the shipped LSTM's IG converges over its last 24 characters, not over 128


def _model(path: str, mtime: float) -> torch.nn.Module:
    return load_model(path, mtime).model


def site_label(s: ab.Site) -> str:
    if s.kind == "head":
        return _("layer {layer}, head {head}").format(layer=s.layer, head=s.index)
    return _("layer {layer}, cell {cell}").format(layer=s.layer, cell=s.index)


# ---------------------------------------------------------------------------- cached computations


def knockout(path: str, mtime: float, ids: tuple[int, ...], text: str, behaviour: str, mode: str) -> ab.Knockout:
    """Every head (GPT) or cell (LSTM/GRU) knocked out in turn, once per input for all sessions, with a bar."""
    def run() -> ab.Knockout:
        model = _model(path, mtime)
        sites = ab.heads(model) if tx.is_gpt(model) else ab.cells(model)
        bar = st.progress(0.0, text=_("Knocking out {n} parts one at a time…").format(n=len(sites)))
        try:
            return ab.knockout_map(model, ids, sites, ab.behaviour_mask(behaviour, text), mode=mode,
                                   batch=32 if tx.is_gpt(model) else 128,
                                   progress=lambda f: bar.progress(f, text=_("Knocked out {share:.0%} of the parts").format(share=f)))
        finally:
            bar.empty()
    return cache.result(("knockout", path, mtime, ids, behaviour, mode), run)


@st.cache_data(max_entries=32, show_spinner=L_("Integrating the gradients…"))
def attribution(path: str, mtime: float, ids: tuple[int, ...], position: int, target: int,
                foil: int | None) -> ta.Attribution:
    model = _model(path, mtime)
    return ta.next_char_attribution(model, ids, position, target, foil, last=None if tx.is_gpt(model) else RNN_IG_LAST)


@st.cache_data(max_entries=16, show_spinner=L_("Asking the question three ways…"))
def side_by_side(path: str, mtime: float, ids: tuple[int, ...], position: int, target: int) -> ta.SideBySide:
    return ta.side_by_side(_model(path, mtime), ids, position, target)


@st.cache_data(max_entries=16, show_spinner=L_("Patching every layer and position…"))
def patching(path: str, mtime: float, clean: tuple[int, ...], corrupt: tuple[int, ...], answer: int,
             foil: int) -> pt.Patching:
    return pt.activation_patching(_model(path, mtime), clean, corrupt, answer, foil)


@st.cache_data(max_entries=32, show_spinner=False)
def lens(path: str, mtime: float, ids: tuple[int, ...]) -> pt.Lens:
    return pt.logit_lens(_model(path, mtime), ids, k=3)


@st.cache_data(max_entries=32, show_spinner=False)
def last_logits(path: str, mtime: float, ids: tuple[int, ...]) -> np.ndarray:
    with torch.no_grad():
        return _model(path, mtime)(torch.tensor([ids]))[0][0, -1].float().numpy()

# ---------------------------------------------------------------------------- sections


def knockout_section(path: str, mtime: float, model: torch.nn.Module, ids: Sequence[int], text: str) -> None:
    gpt = tx.is_gpt(model)
    limit = GPT_LIMIT if gpt else RNN_LIMIT
    ids, text = tuple(ids[:limit]), text[:limit]
    c1, c2 = st.columns(2)
    behaviour = c1.selectbox(_("Behaviour to test"), list(ab.BEHAVIOURS), 1, format_func=_, key="intervene_behaviour",
                             bind="query-params", help=_("The characters scored: how sure the model is of each "
                                                         "closing quote, newline or phrase mark in the text."))
    mode = c2.radio(_("Knock a part out by setting its output to"), list(ab.MODES), format_func=lambda m: _(ab.MODES[m]),
                    key="intervene_mode", horizontal=True, bind="query-params",
                    help=_("zero: as if the part were cut out; mean: its average over this text, which removes "
                           "only what it says about this character."))
    st.caption(_("The first {n} characters of the text are scored.").format(n=len(ids)))
    mask = ab.behaviour_mask(behaviour, text)
    if not mask.any():
        st.info(_("This text has no character for '{behaviour}'. Paste a text that has some.").format(
            behaviour=_(behaviour)))
        return
    k = knockout(path, mtime, ids, text, behaviour, mode)
    title = _("'{behaviour}' with each part knocked out").format(behaviour=_(behaviour))
    if gpt:
        L, H = model.config.n_layer, model.config.n_head
        style.chart(fig.head_map(k.effect.reshape(L, H), title, _("change")), width="stretch")
    else:
        style.chart(fig.cell_bars(k.effect, [site_label(s) for s in k.sites], title), width="stretch")
    st.caption(_("The change of the mean log-probability of the {n} characters that show '{behaviour}'. Clean, the "
                 "model gives them {lp:.2f} ({p:.0%} on average). Blue: the part is needed (knocking it out makes them "
                 "less likely); red: the model does better without it.").format(
                     n=int(mask.sum()), behaviour=_(behaviour), lp=k.clean, p=float(np.exp(k.clean))))
    order = [int(i) for i in np.argsort(k.effect)]
    pick = st.selectbox(_("Knock out (the most needed first)"), order, format_func=lambda i: f"{site_label(k.sites[i])}: "
                        f"{k.effect[i]:+.3f}", key="intervene_part")
    per = k.per_position[pick]
    c1, c2, c3 = st.columns(3)
    c1.metric(_("loss, clean"), f"{-k.clean_logprobs.mean():.3f}")
    c2.metric(_("loss with {part} knocked out").format(part=site_label(k.sites[pick])),
              f"{-(k.clean_logprobs + per).mean():.3f}", delta=f"{-per.mean():+.3f}", delta_color="inverse")
    c3.metric(_("log-probability of '{behaviour}'").format(behaviour=_(behaviour)),
              f"{k.clean + k.effect[pick]:.2f}", delta=f"{k.effect[pick]:+.3f}")
    st.caption(_("Each character coloured by how much more (red) or less (blue) likely the model found it "
                 "with this part knocked out (change of log-probability)."))
    values = np.concatenate([[0.0], per])
    scale = float(max(np.abs(per).max(), 1e-6))
    st.html(color_legend_html(scale))
    st.html(neuron_text_html(text, values, scale))


def pick_prediction(path: str, mtime: float, model: torch.nn.Module, ids: Sequence[int], text: str, vocab: Sequence[str]
                    ) -> tuple[int, int, int | None]:
    """The position whose next character to explain, its target and, in contrastive mode, the foil."""
    n = len(ids)
    state.forget_outside("intervene_position", 1, n - 2)
    first_quote = np.flatnonzero(ab.behaviour_mask("closing a quote", text))
    c1, c2, c3 = st.columns([2, 1, 1])
    pos = c1.slider(_("Explain the character after position"), 1, n - 2,
                    int(first_quote[0]) if len(first_quote) else n - 2, key="intervene_position", bind="query-params")
    logits = last_logits(path, mtime, tuple(ids[max(0, pos + 1 - getattr(model.config, "block_size", n)):pos + 1]))
    ranked = [int(i) for i in np.argsort(-logits)]
    chars = list(range(len(vocab)))
    target = c2.selectbox(_("Target character"), chars, index=ids[pos + 1], format_func=lambda i: show_char(vocab[i]),
                          key=f"intervene_target_{pos}")
    foil_default = next(i for i in ranked if i != target)
    foil = c3.selectbox(_("…and not (contrastive)"), [None] + chars, index=1 + foil_default,
                        format_func=lambda i: _("(plain)") if i is None else show_char(vocab[i]),
                        key=f"intervene_foil_{pos}",
                        help=_("Contrastive: explain logit(target) − logit(this character), e.g. why \" and not '. "
                               "Plain: explain logit(target) alone."))
    return pos, target, foil


def attribution_section(path: str, mtime: float, model: torch.nn.Module, ids: Sequence[int], text: str,
                        vocab: Sequence[str]) -> None:
    pos, target, foil = pick_prediction(path, mtime, model, ids, text, vocab)
    a = attribution(path, mtime, tuple(ids), pos, target, foil)
    ctx = text[a.first:pos + 1]
    what = (_("logit({t}) − logit({f})").format(t=show_char(vocab[target]), f=show_char(vocab[foil]))
            if foil is not None else _("logit({t})").format(t=show_char(vocab[target])))
    st.caption(_("Integrated gradients of {what} over the last {n} characters the model reads, from all-zero "
                 "embeddings ({base:+.2f}) to the text ({value:+.2f}): the scores sum to {total:+.2f} (gap "
                 "{delta:.1e}).").format(what=what, n=len(ctx), base=a.base, value=a.value,
                                         total=float(a.scores.sum()), delta=abs(a.delta)))
    if not tx.is_gpt(model):
        st.caption(_("For the LSTM only the last {n} characters are varied, the earlier ones kept as they are: over "
                     "a longer stretch the path from zero embeddings is too rough for the integral to converge.").format(
                         n=RNN_IG_LAST))
    if abs(a.delta) > 0.05 * abs(a.value - a.base) + 0.01:
        st.warning(_("The integral has not converged here: the scores miss {delta:.2f} of the {gap:.2f} they should "
                     "add up to, so read them as rough.").format(delta=abs(a.delta), gap=a.value - a.base))
    scale = float(max(np.abs(a.scores).max(), 1e-6))
    st.html(color_legend_html(scale))
    st.html(neuron_text_html(ctx + "→" + vocab[target], np.concatenate([a.scores, [0.0, 0.0]]), scale))
    if not tx.is_gpt(model):
        return
    st.subheader(_("Attention, gradient and knockout side by side"))
    s = side_by_side(path, mtime, tuple(ids), pos, target)
    shown = ctx[-48:]
    style.chart(fig.side_by_side({m: v[-len(shown):] for m, v in s.scores.items()}, shown,
                                 _("Which characters mattered for {t}? (the last {n} read)").format(
                                     t=show_char(vocab[target]), n=len(shown)), first=pos + 1 - len(shown)),
                width="stretch")
    st.dataframe(pd.DataFrame({_("pair"): [f"{_(a)} ~ {_(b)}" for a, b in s.agreement],
                               _("Spearman ρ"): [round(r, 2) for r, _t in s.agreement.values()],
                               _("Kendall τ"): [round(t, 2) for _r, t in s.agreement.values()]}), hide_index=True)
    st.caption(_("Attention: rollout over the layers (what the last position draws on); gradient: |IG| of "
                 "logit({t}); knockout: how much logit({t}) falls without that character. Rank correlations near "
                 "1 mean the three agree; attention often does not (Jain and Wallace 2019).").format(
                     t=show_char(vocab[target])))


# clean and corrupted texts whose one different character changes the shipped GPTs' answer: a stage direction
# in [ ] ends with '.' (0.62 against 0.31 after '('); a couplet's second phrase ends with 。, a first one with ，
PAIRS = {"latin": ("[Enter Romeo and Juliet", "(Enter Romeo and Juliet"), "zh": ("白日依山尽，黄河入海流", "白日依山尽。黄河入海流")}


def patching_section(path: str, mtime: float, model: torch.nn.Module, vocab: Sequence[str], dataset: str) -> None:
    clean0, corrupt0 = PAIRS["zh" if "，" in vocab else "latin"]
    c1, c2 = st.columns(2)
    clean = c1.text_input(_("Clean text"), clean0, key=f"intervene_clean_{dataset}", bind="query-params")
    corrupt = c2.text_input(_("Corrupted text (as long as the clean one)"), corrupt0,
                            key=f"intervene_corrupt_{dataset}", bind="query-params")
    block = model.config.block_size
    cr, xr = tx.read(vocab, clean), tx.read(vocab, corrupt)
    if min(len(cr.ids), len(xr.ids)) < 2:
        st.warning(_("Type a clean and a corrupted text of at least two characters the model reads each (now {a} "
                     "and {b}).").format(a=len(cr.ids), b=len(xr.ids)))
        return
    if len(cr.ids) != len(xr.ids):
        st.warning(_("Patching pairs the two texts character by character: give two texts of the same length "
                     "(now {a} and {b} characters the model reads).").format(a=len(cr.ids), b=len(xr.ids)))
        return
    cid, xid = tuple(cr.ids[-block:]), tuple(xr.ids[-block:])
    lc, lx = last_logits(path, mtime, cid), last_logits(path, mtime, xid)
    answer = int(lc.argmax())
    foil = int(lx.argmax()) if int(lx.argmax()) != answer else int(np.argsort(-lc)[1])
    st.caption(_("Scored at the last character: logit({a}) − logit({f}), the clean run's favourite against the "
                 "corrupted run's. 1 means patching brings the clean answer fully back, 0 not at all.").format(
                     a=show_char(vocab[answer]), f=show_char(vocab[foil])))
    p = patching(path, mtime, cid, xid, answer, foil)
    c1, c2 = st.columns(2)
    c1.metric(_("clean"), f"{p.clean:+.2f}")
    c2.metric(_("corrupted"), f"{p.corrupt:+.2f}")
    style.chart(fig.patching_map(p.resid, cr.text[-block:], _("Residual stream patched at one layer and position")),
                width="stretch")
    style.chart(fig.head_map(p.heads, _("One head's output patched at every position"), _("restored")),
                width="stretch")


def lens_section(path: str, mtime: float, model: torch.nn.Module, ids: Sequence[int], text: str,
                 vocab: Sequence[str]) -> None:
    n = min(len(ids), model.config.block_size)
    state.forget_outside("intervene_lens_start", 0, max(0, n - 24))     # a shorter text or context than before
    start = (st.slider(_("Window start"), 0, n - 24, 0, key="intervene_lens_start", bind="query-params",
                       help=_("The table shows 24 characters of the first {n} at a time.").format(n=n))
             if n > 24 else 0)
    window = tuple(ids[:n])
    lz = lens(path, mtime, window)
    cols = slice(start, start + 24)
    style.chart(fig.lens_table(lz.probs[:, cols], lz.ids[:, cols], vocab, text[:n][cols],
                               _("What each layer would predict next"),
                               first=start),
                width="stretch")
    st.caption(_("Each row applies the final layer norm and the output layer to the residual stream after that "
                 "layer; the last row is the model's own prediction. Each cell shows the top character, shaded by its "
                 "probability; hover it for the top 3."))

# ---------------------------------------------------------------------------- images


@st.cache_data(max_entries=32, show_spinner=L_("Knocking out every head…"))
def image_head_knockout(path: str, mtime: float, dataset_name: str, x_np: np.ndarray, target: int,
                        mode: str) -> tuple[np.ndarray, float]:
    """(n_layer, n_head) change of the class score of image x (1, C, H, W) with each ViT head knocked out, and
    the clean score; mean-ablation takes its means over the first 256 test images."""
    from karp_models.ui.loaders import dataset
    model = _model(path, mtime)
    ref = dataset(dataset_name).test_x[:256].float() / 255 if mode == "mean" else None
    change, clean = ab.image_knockout(model, torch.from_numpy(x_np), target, ab.heads(model), mode=mode, reference=ref)
    return change.reshape(model.config.n_layer, model.config.n_head), clean


def vit_knockout_section(path: str, mtime: float, dataset_name: str, x: torch.Tensor, target: int,
                         class_name: str) -> None:
    """The ViT page's knockout grid: the predicted class's score with each head knocked out."""
    mode = st.radio(_("Knock a part out by setting its output to"), list(ab.MODES), format_func=lambda m: _(ab.MODES[m]),
                    key="vit_attention_mode", horizontal=True, bind="query-params",
                    help=_("zero: as if the head were cut out; mean: its average over 256 test images."))
    change, clean = image_head_knockout(path, mtime, dataset_name, x.numpy(), target, mode)
    style.chart(fig.head_map(change, _("Score of '{name}' with each head knocked out").format(name=class_name),
                             _("change")), width="stretch")
    st.caption(_("The change of the logit of '{name}' (clean: {score:.2f}) when one head's output is set to {mode}. "
                 "Blue: the head is needed for this answer. Compare with where the heads look above: a head can look "
                 "at the object and still not matter.").format(name=class_name, score=clean, mode=_(ab.MODES[mode])))
