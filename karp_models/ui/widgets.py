"""Shared widgets: the device badge in the sidebar."""
from __future__ import annotations

import streamlit as st

from karp_models import device as dev


@st.cache_resource
def device_text() -> str:
    dev.set_threads(for_app=True)
    return dev.describe_device(dev.pick_device())


def device_badge() -> None:
    """Show where models run, in words, at the bottom of the sidebar."""
    st.sidebar.caption(f"Runs on **{device_text()}**")
