"""RNN neurons: text coloured by one LSTM/GRU cell, a search for cells that track quotes, line position or
brackets (and, in Chinese verse, the position in the phrase and the couplet), and how often the gates saturate
(Karpathy, Johnson and Fei-Fei 2015)."""
import pandas as pd
import streamlit as st

from karp_models.i18n import _
from karp_models.introspect.neurons import gate_saturation, search_cells, signals, state_names
from karp_models.ui import glossary, style, timelapse
from karp_models.ui.models import model_picker
from karp_models.ui.compute import cached_traces
from karp_models.ui.figures.text import color_legend_html, gate_figure, neuron_text_html, trace_figure
from karp_models.ui.text_views import prepare_text, sample_passage, vocab_of

st.title(_("RNN neurons"))
st.markdown(glossary.hover(_(
    "A recurrent network carries a vector of cells from one character to the next. Some cells "
    "learn something a person can name: whether we are inside a quotation, how far along the "
    "line we are, whether a bracket is open. Colour the text by one cell and see."), "cells"),
    unsafe_allow_html=True)

picked = model_picker("rnn_neurons_model", task="text", families=("rnn",), default="lstm-shakespeare")
if picked is None:
    st.stop()
ck, choice = picked
vocab, cfg = vocab_of(ck), ck.model.config

text = st.text_area(_("Text"), sample_passage(choice.dataset, 1500, must_have='"'), height=160,
                    key=f"rnn_neurons_text_{choice.dataset}", bind="query-params")
ids, text = prepare_text(text, vocab)
if len(ids) < 2:
    st.warning(_("Type at least two characters the model knows."))
    st.stop()
states = cached_traces(str(ck.path), choice.mtime, tuple(ids))     # each (T, L, H)

names = state_names(cfg.cell)
c1, c2, c3 = st.columns(3)
key = c1.radio(_("State"), list(names), format_func=lambda k: _(names[k]), key="rnn_neurons_state",
               horizontal=True, bind="query-params")
layer = (c2.selectbox(_("Layer"), range(cfg.n_layer), key="rnn_neurons_layer", bind="query-params")
         if cfg.n_layer > 1 else 0)
sig = signals(text)
verse = "position in phrase" in sig                                # Chinese verse: its own choice, its signals first
signal = c3.selectbox(_("Search for a cell that tracks"), list(sig), index=0, format_func=_,
                      key="rnn_neurons_verse_signal" if verse else "rnn_neurons_signal", bind="query-params")
search = (choice.path, text, key, layer, signal)
if st.session_state.get("rnn_neurons_search", search) != search:
    st.session_state.pop("rnn_neurons_cell", None)                  # a new search: its best cell
st.session_state["rnn_neurons_search"] = search

st.header(_("Cell search"))
if verse:
    st.caption(_("In Chinese verse a line is a couplet: two phrases of five or seven characters, closed by ， "
                 "and 。. Karpathy's line-length cell has a twin here: a cell that counts along the phrase, or "
                 "knows which half of the couplet it is in."))
ranked = [s for s in search_cells(states[key], sig[signal], top=10 * cfg.n_layer) if s.layer == layer][:10]
if sig[signal].std() == 0:
    st.info(_("This text has no variation in '{signal}' (no quotes or brackets?): nothing to correlate with. "
              "Paste a text that has some.").format(signal=_(signal)))
st.caption(_("Cells of layer {layer} ranked by how closely their value follows '{signal}' over this text "
             "(Pearson correlation; a negative cell tracks it upside down).").format(layer=layer, signal=_(signal)))
st.dataframe(pd.DataFrame({_("cell"): [s.cell for s in ranked],
                           _("correlation"): [round(s.score, 3) for s in ranked]}),
             hide_index=True, height=min(400, 38 * len(ranked) + 40))

best = ranked[0].cell if ranked else 0
cell = st.number_input(_("Cell to colour by (0–{last}; the best match is {best})").format(last=cfg.n_hidden - 1, best=best),
                       0, cfg.n_hidden - 1, best, key="rnn_neurons_cell", bind="query-params")
values = states[key][:, layer, cell]
scale = 1.0 if key == "h" else None
style.chart(trace_figure(values, sig[signal], text, _("cell {n}").format(n=cell), _(signal)), width="stretch")
st.html(color_legend_html(scale or float(max(abs(values).max(), 1e-6))))
st.html(neuron_text_html(text, values, scale))

st.header(_("Gate saturation"))
sats = gate_saturation(states, cfg.cell)
if not sats:
    st.info(_("A vanilla RNN has no gates."))
else:
    style.chart(gate_figure(sats, layer), width="stretch")
    st.dataframe(pd.DataFrame({_("gate"): [_(s.name) for s in sats],
                               _("steps < 0.1 (closed)"): [f"{s.left[layer].mean():.0%}" for s in sats],
                               _("steps > 0.9 (open)"): [f"{s.right[layer].mean():.0%}" for s in sats],
                               _("cells mostly closed (over half of the steps)"): [int((s.left[layer] > .5).sum()) for s in sats],
                               _("cells mostly open (over half of the steps)"): [int((s.right[layer] > .5).sum()) for s in sats]}),
                 hide_index=True)
    st.caption(_("One dot per cell: how often its gate is nearly shut (< 0.1) against nearly fully open (> 0.9) "
                 "over this text, as in Karpathy, Johnson and Fei-Fei (2015), Fig. 3. A forget gate dot near the "
                 "top left is a cell that remembers for a long time; dots near the origin are gates that "
                 "really compute something with each character."))

st.header(_("Time-lapse: cell {n} during training").format(n=cell))
st.caption(_("Replay the run over its snapshots: the same text through the network as it was at each step of "
             "its training, coloured by the cell chosen above."))
timelapse.neurons_section(ck, choice, ids, text, key, layer, cell, sig[signal], _(signal))
