"""A page's state: in its address, so the address is a link to exactly that view, and kept while
a person moves between pages.

Streamlit does the syncing itself: a widget made with `bind="query-params"` and a page-prefixed
key (`explain_model`, `explain_test_index`, `text_attention_text_shakespeare`) keeps its value in
the URL as `?explain_model=fast-fashion-mnist&explain_test_index=7`; opening that address, in any
browser, sets the widgets to those values, and coming back to the page through the sidebar brings
them back (Streamlit's docs: st.query_params, "bind"). A value equal to the widget's default is
left out of the URL, so defaults must be the same for every visitor. This module adds the two
things binding does not do: a widget's first value taken from elsewhere in the session (the
model chosen on another page), and a note saying that the address is the link to share. Binding
drops a value the widget cannot take (an unknown option, an index past the end) without a word;
`LinkCheck` says which parameter and value a link asked for in vain.

What cannot live in an address (a person's own pictures) is kept in the session with `kept`:
Streamlit forgets a widget's value when its page is left, never a plain session key, so a page
keeps its record under one key and gives its widgets their values back from it (`start_with`).
"""
from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

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


NOT_SETTINGS = {"lang", "work", "embed", "embed_options",   # the language, the work id, Streamlit's own,
                "lesson", "lesson_step", "lesson_class"}    # the guided lesson, its step, the class code (ui/lessons.py)
PENDING = "karp_link_ignored"         # session state: what a run cut short by st.rerun found


def _means_default(key: str, raw: list[str]) -> bool:
    """Whether a link's text `raw` for widget `key` means the widget's default (Streamlit leaves
    such a value out of the address: taken, not ignored). Read as Streamlit reads a link, through
    the widget's own deserializer (its metadata is internal to Streamlit 1.67, so any change there
    falls back to comparing the text with the widget's value)."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import (
            get_script_run_ctx,
        )
        from streamlit.runtime.state.query_params import parse_url_param

        inner = get_script_run_ctx().session_state._state
        meta = inner._new_widget_state.widget_metadata[inner._key_id_mapper.get_id_from_key(key)]
        parsed = parse_url_param(raw, meta.value_type)
        value = meta.deserializer(parsed)
        if meta.value_type in ("int_value", "double_value") and parsed != value:
            return False                # out of range: the deserializer fell back to the default
        return value == meta.deserializer(None)
    except Exception:                   # noqa: BLE001 - another Streamlit: the plain comparison
        return _same(raw, st.session_state[key])


def _same(raw: list[str], value: Any) -> bool:
    """Whether a link's text `raw` means widget value `value`, compared as text."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) != len(raw):
        return False
    for r, v in zip(raw, values):
        if isinstance(v, bool):
            ok = r.lower() == str(v).lower()
        elif isinstance(v, (int, float)):
            try:
                ok = float(r) == float(v)
            except ValueError:
                ok = False
        else:
            ok = r in (str(v), _(str(v)))
        if not ok:
            return False
    return True


class LinkCheck:
    """Around a page's run (`with LinkCheck(): nav.run()` in app.py): a warning at the top of the
    page naming each setting in the address that the page did not use, parameter and value: a
    value its widget cannot take (Streamlit drops or clamps it), or a parameter no widget of the
    page reads (taken out of the address, so the link stays one to share)."""

    def __init__(self) -> None:
        self.asked = {k: st.query_params.get_all(k) for k in st.query_params
                      if k not in NOT_SETTINGS and k not in st.session_state}
        self.slot = st.container()

    def __enter__(self) -> Self:
        self._warn(st.session_state.pop(PENDING, []))
        return self

    def ignored(self) -> list[tuple[str, str]]:
        """(parameter, value as the link wrote it) of each setting this run did not use."""
        out = []
        for k, raw in self.asked.items():
            now = st.query_params.get_all(k) if k in st.query_params else None
            if k not in st.session_state:                       # no widget here reads it
                if now is not None:
                    del st.query_params[k]
            elif now == raw or (now is None and _means_default(k, raw)):
                continue                                        # taken, or the widget's default
            out.append((k, ", ".join(raw)))
        return out

    def _warn(self, found: list[tuple[str, str]]) -> None:
        if not found:
            return
        shown = "; ".join(f"{p} = {v if len(v) <= 60 else v[:57] + '…'}" for p, v in found)
        self.slot.warning(_("Part of this link was ignored because this page cannot show it: "
                            "{settings}.").format(settings=shown), icon=":material/link_off:")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        found = self.ignored()
        if exc_type is not None and exc_type.__name__ == "RerunException":
            st.session_state[PENDING] = found                  # this run's page is thrown away
        else:
            self._warn(found)
