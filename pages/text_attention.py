"""GPT attention: where each character of a text looks, per layer and head (heatmap, head view, model view)."""
import streamlit as st

from karp_models.i18n import _
from karp_models.ui import glossary, state, style, timelapse
from karp_models.ui.models import model_picker
from karp_models.ui.compute import cached_attention
from karp_models.ui.figures.text import (attention_heatmap, head_view_height, head_view_html, model_view,
                                         sharpest_head, show_char)
from karp_models.ui.text_views import prepare_text, sample_passage, vocab_of

st.title(_("GPT attention"))
st.markdown(_("A transformer reads every character at once: each character builds a query and "
              "compares it with the keys of the characters **before** it (never after: the mask is causal). "
              "The softmax of those scores is the attention: how much of each earlier character it takes in."))

picked = model_picker("text_attention_model", task="text", families=("transformer",), default="gpt-shakespeare")
if picked is None:
    st.stop()
ck, choice = picked
vocab = vocab_of(ck)
cfg = ck.model.config

text = st.text_area(_("Text"), sample_passage(choice.dataset, 600), height=160,
                    key=f"text_attention_text_{choice.dataset}", bind="query-params")
ids, text = prepare_text(text, vocab)
if len(ids) < 2:
    st.warning(_("Type at least two characters the model knows."))
    st.stop()

# the model never sees more than block_size characters at once: look at one window of them
c1, c2 = st.columns(2)
longest = min(cfg.block_size, len(ids))
state.forget_outside("text_attention_length", 2, longest)             # a shorter text than before
length = (c1.slider(_("Window length (characters)"), 2, longest, min(32, longest), key="text_attention_length",
                    bind="query-params",
                    help=_("This GPT's context is {n} characters; longer windows get smaller labels.").format(
                        n=cfg.block_size))
          if longest > 2 else longest)
state.forget_outside("text_attention_start", 0, len(ids) - length)
start = (c2.slider(_("Window start"), 0, len(ids) - length, 0, key="text_attention_start", bind="query-params")
         if len(ids) > length else 0)
window, chars = tuple(ids[start:start + length]), text[start:start + length]
st.caption(_("Characters {first}–{last} of {n:,}, read as a fresh context: {text}").format(
    first=start, last=start + length - 1, n=len(ids), text="".join(show_char(c) for c in chars)))

att = cached_attention(str(ck.path), choice.mtime, window)           # (L, H, T, T)
L, H = att.shape[:2]
first = sharpest_head(att)                                           # open on the most decided head

glossary.words("attention", "head", "softmax", "transformer")
tab_map, tab_head, tab_model, tab_lapse = st.tabs([_("Heatmap"), _("Head view"), _("Model view"), _("Time-lapse")],
                                                  key="text_attention_tab", bind="query-params")
with tab_map:
    c1, c2 = st.columns(2)
    layer = c1.selectbox(_("Layer"), range(L), first[0], key="text_attention_layer", bind="query-params")
    head = c2.selectbox(_("Head"), range(H), first[1], key="text_attention_head", bind="query-params",
                        help=_("It opens on the sharpest head (lowest average entropy of its rows)."))
    style.chart(attention_heatmap(att[layer, head], chars, _("Layer {layer}, head {head}").format(layer=layer, head=head)),
                width="stretch")
    st.caption(_("Each row is a character and sums to 1 across the characters it attends to. "
                 "The empty upper triangle is the causal mask: the future is hidden."))
with tab_head:
    hl = st.selectbox(_("Layer"), range(L), first[0], key="text_attention_head_layer", bind="query-params")
    st.caption(_("Hover a character (click to keep it): the text before it lights up in each head's colour, "
                 "as strongly as that head attends there. Toggle heads with their buttons."))
    st.iframe(head_view_html(att[hl], chars), height=head_view_height(chars))   # offline HTML + JS, no CDN
with tab_model:
    st.caption(_("All layers (rows) and heads (columns) for this window, on one colour scale. "
                 "Look for diagonal heads (the previous character), vertical stripes (one character everyone "
                 "reads, often a newline or space) and heads that spread out over the word."))
    style.chart(model_view(att, chars), width="stretch")
with tab_lapse:
    st.caption(_("Replay the run over its snapshots: the same window through the model as it was at each step "
                 "of its training."))
    timelapse.attention_section(ck, choice, window, chars)
