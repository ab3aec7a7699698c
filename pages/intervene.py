"""Knock it out: intervene on a character model and measure. A knockout map of every head or cell on a
behaviour, one part's effect along the text, next-character attribution (plain or contrastive) with attention,
gradient and knockout side by side, activation patching between two texts and the logit lens."""
import streamlit as st

from karp_models.i18n import _
from karp_models.introspect.text import is_gpt
from karp_models.ui import glossary
from karp_models.ui.intervene import attribution_section, knockout_section, lens_section, patching_section
from karp_models.ui.models import model_picker
from karp_models.ui.text_views import prepare_text, sample_passage, vocab_of

st.title(_("Knock it out"))
st.markdown(glossary.hover(_(
    "Attention maps and attributions show what goes together. To know what a part of the network is **for**, "
    "take it out and see what breaks: this is ablation. Here you knock out heads of the GPT or cells of the "
    "LSTM, copy activations from one text into another, and read what each layer would predict."),
    "ablation"), unsafe_allow_html=True)

picked = model_picker("intervene_model", task="text", families=("transformer", "rnn"), default="gpt-shakespeare")
if picked is None:
    st.stop()
ck, choice = picked
model, vocab = ck.model, vocab_of(ck)
path, mtime = str(ck.path), choice.mtime
gpt = is_gpt(model)

text = st.text_area(_("Text"), sample_passage(choice.dataset, 256, must_have='"'), height=130,
                    key=f"intervene_text_{choice.dataset}", bind="query-params")
ids, text = prepare_text(text, vocab, limit=512)
if len(ids) < 3:
    st.warning(_("Type at least three characters the model knows."))
    st.stop()

glossary.words("ablation", "head", "cell", "activation patching", "logit lens", "logit", "Kendall tau")
tabs = [_("Knockout map"), _("Which characters mattered"), _("Patching"), _("Logit lens")]
t_map, t_attr, t_patch, t_lens = st.tabs(tabs, key="intervene_tab", bind="query-params")
with t_map:
    st.caption(_("Knock out each head (GPT) or cell (LSTM) in turn and see how sure the model stays of the "
                 "characters that show a behaviour."))
    knockout_section(path, mtime, model, ids, text)
with t_attr:
    st.caption(_("Which earlier characters made the model predict this one: integrated gradients on the "
                 "character embeddings. Red pushed towards the target, blue against it."))
    attribution_section(path, mtime, model, ids, text, vocab)
with t_patch:
    if not gpt:
        st.info(_("Patching and the logit lens are for the GPT: choose a GPT above."))
    else:
        st.caption(_("Run the corrupted text, but copy one activation from the clean text's run: where the clean "
                     "answer comes back, that activation carries the difference."))
        patching_section(path, mtime, model, vocab, choice.dataset)
with t_lens:
    if not gpt:
        st.info(_("Patching and the logit lens are for the GPT: choose a GPT above."))
    else:
        lens_section(path, mtime, model, ids, text, vocab)
