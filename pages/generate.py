"""Generate text: the next-character guesses at every position, and sampling streamed as it happens."""
import time

import streamlit as st

from karp_models.i18n import _
from karp_models.introspect.text import generate_stream
from karp_models.ui import glossary, state, style
from karp_models.ui.models import model_picker
from karp_models.ui.compute import cached_next_chars
from karp_models.ui.figures.text import surprise_figure, topk_html
from karp_models.ui.text_views import (default_prime, prepare_prime, prepare_text, sample_passage,
                                        vocab_of)

st.title(_("Generate text"))
st.markdown(glossary.hover(_(
    "A character language model gives, after every character, a probability for each possible "
    "next character (the softmax of its logits). Below: its five best guesses at each position, "
    "then new text sampled from those probabilities one character at a time."), "softmax", "logits"),
    unsafe_allow_html=True)

picked = model_picker("generate_model", task="text", default="gpt-shakespeare")
if picked is None:
    st.stop()
ck, choice = picked
vocab = vocab_of(ck)

st.header(_("Next character, at every position"))
text = st.text_area(_("Text"), sample_passage(choice.dataset, 400), height=130,
                    key=f"generate_text_{choice.dataset}", bind="query-params")
ids, text = prepare_text(text, vocab)
if len(ids) < 2:
    st.warning(_("Type at least two characters the model knows."))
else:
    nc = cached_next_chars(str(ck.path), choice.mtime, tuple(ids), tuple(vocab))
    shown = min(60, len(ids))
    state.forget_outside("generate_start", 0, len(ids) - shown)          # a shorter text than before
    start = (st.slider(_("Show from character"), 0, len(ids) - shown, 0, key="generate_start",
                       bind="query-params") if len(ids) > shown else 0)
    style.chart(surprise_figure(nc, (start, start + shown - 1)), width="stretch")
    st.html(topk_html(nc, start, shown))
    mean = float(nc.actual[:-1].mean())
    st.caption(_("Under each character: the 5 likeliest next characters, shaded by probability; the one "
                 "that really comes next is outlined in red. On average the real next character got "
                 "{mean:.0%}.").format(mean=mean))

st.header(_("Generate"))
c1, c2, c3, c4 = st.columns(4)
temperature = c1.slider(_("Temperature"), 0.0, 2.0, 0.8, 0.05, key="generate_temperature",
                        bind="query-params", help=glossary.tip("temperature"))
state.forget_outside("generate_top_k", 0, len(vocab))                  # a smaller vocabulary than before
top_k = c2.number_input(_("Top-k (0 = all)"), 0, len(vocab), 0, key="generate_top_k", bind="query-params",
                        help=glossary.tip("top-k"))
length = c3.slider(_("Characters"), 20, 1000, 300, 10, key="generate_length", bind="query-params")
seed = c4.number_input(_("Seed"), 0, 2**31 - 1, 0, key="generate_seed", bind="query-params",
                       help=_("Same seed, same text."))
prime = st.text_input(_("Prime text (the model reads it first)"), default_prime(choice.dataset),
                      key=f"generate_prime_{choice.dataset}", bind="query-params")
prime_ids, prime_read = prepare_prime(prime, vocab)
if st.button(_("Generate"), key="generate_go", type="primary"):
    out, box, last = prime_read, st.empty(), 0.0
    for ch in generate_stream(ck.model, prime_ids, vocab, int(length), float(temperature), int(top_k) or None,
                              int(seed)):
        out += ch
        if time.monotonic() - last > 0.08:                            # redraw ~12 times a second
            box.code(out + "▌", language=None)
            last = time.monotonic()
    box.code(out, language=None)
    st.session_state["generate_last"] = (choice.path, out, len(prime_read))
elif st.session_state.get("generate_last", ("",))[0] == choice.path:
    st.code(st.session_state["generate_last"][1], language=None)
if st.session_state.get("generate_last", ("",))[0] == choice.path:
    _path, out, n = st.session_state["generate_last"]
    st.caption((_("The first {n} characters are the prime as the model read it; the other {m} the model wrote.")
                if n else _("The model started from a new line and wrote all {m} characters.")).format(
                    n=n, m=len(out) - n))
