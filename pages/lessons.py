"""Lessons: guided tours through karp's live views. Each step opens a page in a set state beside its text,
and asks the class to predict before the live model shows the answer."""
import streamlit as st

from karp_models.i18n import _
from karp_models.ui import lessons

st.title(_("Lessons"))
st.markdown(_("A lesson walks a class through karp step by step. Each step opens a view as the lesson set it, "
              "beside a short text; many steps ask you to **predict first**, and the live model checks your "
              "answer. Use **Back** and **Next** beside the view; Presentation mode works too."))
lessons.class_box()
lessons.catalogue()
