"""A page's state: in its address, so the address is a link to exactly that view, and kept while
a person moves between pages.

Streamlit does the syncing itself: a widget made with `bind="query-params"` and a page-prefixed
key (`explain_model`, `explain_test_index`, `text_attention_text_shakespeare`) keeps its value in
the URL as `?explain_model=fast-fashion-mnist&explain_test_index=7`; opening that address, in any
browser, sets the widgets to those values, and coming back to the page through the sidebar brings
them back (Streamlit's docs: st.query_params, "bind"). A value equal to the widget's default is
left out of the URL, so defaults must be the same for every visitor. This module adds the two
things binding does not do: a widget's first value taken from elsewhere in the session (the
model chosen on another page), and a note saying that the address is the link to share.

What cannot live in an address (a person's own pictures) is kept in the session with `kept`:
Streamlit forgets a widget's value when its page is left, never a plain session key, so a page
keeps its record under one key and gives its widgets their values back from it (`start_with`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from karp_models.i18n import _

T = TypeVar("T")


def kept(key: str, make: Callable[[], T]) -> T:
    """This session's object under `key` (made by `make` on the first call): it stays while the
    person visits other pages, until the tab is closed."""
    if key not in st.session_state:
        st.session_state[key] = make()
    return st.session_state[key]


def start_with(key: str, value: Any) -> None:
    """Give widget `key` its first value from elsewhere in the session (None: nothing to give),
    unless this visit's link sets it or the page set it earlier in the session. Call before the
    widget is drawn."""
    if value is None or key in st.query_params or key in st.session_state:
        return
    st.session_state[key] = value


def forget_outside(key: str, lo: float, hi: float) -> None:
    """Forget widget `key`'s kept value when it lies outside [lo, hi] (its range shrank: a shorter text), so
    the widget starts again from its default instead of refusing the value. Call before the widget is drawn."""
    v = st.session_state.get(key)
    if v is not None and not lo <= v <= hi:
        del st.session_state[key]


def share_note(container=st.sidebar) -> None:
    """A line saying that the address bar holds a link to this very view."""
    container.caption(_("The address in the browser is a link to this view: share it to open "
                        "this page with the same model, image, text, settings and language."))
