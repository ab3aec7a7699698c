"""Your own classes: name 2 to 10 classes, add pictures to each (upload, camera, a folder on the
server), then fine-tune a pretrained network on them three ways and compare (issue 21). The
classes stay in this browser tab while other pages are visited; a saved model opens in Predict,
Explain and Evaluate like any other."""
import streamlit as st

from karp_models.i18n import _
from karp_models.ui import finetune as ft
from karp_models.ui import own, style, teacher
from karp_models.ui import training as tr

st.title(_("Your own classes"))
st.caption(_("Teach a network your own pictures: make the classes here, then fine-tune a network "
             "that has already learned to see, and compare three ways to train it."))
style.projector_css()
mgr, sid = tr.manager(), tr.session_id()
mgr.heartbeat(sid)
d = own.draft()

# --- 1. the classes

st.header(_("1. Your classes"))
st.markdown(_("Name each class and add pictures of it: several files at once, a camera shot, or "
              "a folder on this server. Ten or more a class is a good start."))
own.classes_editor(d)
with st.expander(_("Take photos with the camera")):
    own.camera(d)
with st.expander(_("A folder on this server")):
    own.folder(d)
own.split_settings(d)
own.save_classes(d)
missing = own.problems(d)
for p in missing:
    st.info(p, icon=":material/info:")
if missing:
    st.stop()

# --- 2. the backbone, how it reads the pictures, the mode and its frozen layers

st.header(_("2. Fine-tune a pretrained network"))
bb = ft.backbone_picker()
if bb is None:
    st.stop()
built = ft.built(d, bb)
if built is None:
    st.stop()
with st.expander(_("Your pictures as this network sees them"), expanded=False):
    ft.input_preview(built)
left, right = st.columns([2, 3])
with left:
    mode = ft.mode_picker()
    budget = ft.budget(bb)
    all_three = st.button(_("Train all three ways and compare"), icon=":material/play_arrow:", type="primary",
                          key="own_train_all", width="stretch", disabled=not teacher.unlocked())
    just_one = st.button(_("Train only this way: {mode}").format(mode=ft.mode_words(mode)), key="own_train_one",
                         width="stretch", disabled=not teacher.unlocked())
    teacher.gate(_("start training"), key="own_teacher")
with right:
    ft.frozen_layers(bb, built.data.n_classes, mode)
if (all_three or just_one) and teacher.unlocked():
    ft.start(mgr, sid, bb, built.data, ft.MODES_ALL if all_three else (mode,), budget)

# --- 3. the runs, compared

st.header(_("3. The three ways compared"))
polling = ft.polling(mgr, sid)
st.fragment(ft.runs_view, run_every=1.0 if polling else None)(mgr, sid, polling)
