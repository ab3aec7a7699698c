"""Image captioning: a CNN reads a scene and an LSTM describes it, word by word; for each word, the
probability it was written with and where the model looked (Show, Attend and Tell, Xu et al.
2015); greedy and beam search; a model with attention beside one without (issue 20, item 3)."""
import streamlit as st

from karp_models.data.grammar import noun_classes
from karp_models.i18n import _
from karp_models.ui import captioning as ui
from karp_models.ui import style
from karp_models.ui.figures import captioning as figs

st.title(_("Image captioning"))
st.caption(_("A CNN reads the picture and an LSTM writes a sentence about it, word by word. With "
             "attention, it looks at the picture again before each word: the bright part of the map."))
style.projector_css()

top = st.columns([3.2, 5, 2], vertical_alignment="bottom")
picked = ui.captioner(top[0])
if picked is None:
    st.stop()
ck, choice = picked
lang, size = ui.language(ck), ck.model.config.image_size
width = top[2].slider(_("Beam width"), 1, 10, 3, key="captioning_beam", bind="query-params",
                      help=_("Beam search keeps this many half-written captions at each step and "
                             "returns the most probable whole one; width 1 is greedy decoding. "
                             "Every word lowers a caption's probability, so a wide beam may "
                             "prefer a short caption."))
scene = ui.pick_scene(ck, choice, ui.scene_data(choice), container=top[1])
if scene is None or (scene.pipeline is not None and not ui.show_upload(scene)):
    st.stop()
if not ui.fits(ck, scene):
    st.error(_("This captioner reads pictures of another size or colour than this scene."))
    st.stop()

nouns = noun_classes(lang)
greedy = ui.caption(choice.path, choice.mtime, scene.x, 1)
beam = ui.caption(choice.path, choice.mtime, scene.x, width)
pic, said = st.columns([1, 2], gap="medium")
with said:
    ui.show_scene_truth(scene, lang)
    ui.show_caption(_("Greedy"), greedy, scene, lang)
    ui.show_caption(_("Beam search, width {w}").format(w=width), beam, scene, lang)
    follow = st.toggle(_("Word by word: follow the beam search's caption"), key="captioning_follow")
    cap = beam if follow else greedy
    t = ui.word_row(cap, nouns)
    text, boxes = ui.look_words(cap, t, scene, nouns, size)
    st.markdown(text)
    ui.show_references(scene, lang)
with pic:
    ui.chart(figs.word_figure(scene.x, None if cap.attention is None else cap.attention[t],
                              boxes=boxes, height=290), "captioning_map")
    st.caption(f"{scene.source}  \n{ui.quality(ck, choice)}")

if cap.attention is not None:
    st.subheader(_("Where it looked for every word"))
    ui.chart(figs.strip_figure(scene.x, cap.attention, [f"{w}<br>{p:.0%}" for w, p in
                                                        zip(ui.labels(cap), cap.probs)], selected=t),
             "captioning_strip")
st.subheader(_("With and without attention, on the same scene"))
ui.comparison(scene, width)
