"""Shared widgets: the device badge in the sidebar."""
from __future__ import annotations

import streamlit as st

from karp_models import device as dev
from karp_models.i18n import _, language


@st.cache_resource
def _device_text(lang: str) -> str:
    """`lang`: part of the cache key (the words are made in the session's language)."""
    dev.set_threads(for_app=True)
    return dev.describe_device(dev.pick_device())


def device_text() -> str:
    """Where models run, in words, in the session's language."""
    return _device_text(language())


def device_badge() -> None:
    """Show where models run, in words, at the bottom of the sidebar."""
    st.sidebar.caption(_("Runs on **{device}**").format(device=device_text()))
