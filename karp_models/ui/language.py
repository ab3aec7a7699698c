"""The app's language: a switch in the sidebar (English / 简体中文), first set from the link's
`?lang=` or else the browser's language (st.context.locale), then kept in the session and in the
address, so a link opens in the language it was made in and a refresh keeps the choice.

It registers the resolver of karp_models.i18n: `_()` anywhere in the process (ui/, introspect/,
data/ ...) asks it for the language of the session whose script is running, read from the
session state on every call: a fragment's rerun or a callback sees a switch at once. Off a
session's thread (a training job's worker, the CLI) it has no say (see i18n.using).

Why the address always holds `lang`: a choice widget's value is in the link as its label, so a
link's labels are in the language it was made in; opened in another language they would name
no option. With `lang` always in the link, it opens in that language; the reader can switch.
"""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from karp_models import i18n

KEY = "karp_lang"           # session state: the chosen language code
PARAM = "lang"              # the address's parameter: ?lang=zh
LABEL = "Language · 语言"   # its accessible name, in both languages: findable by a reader of either


def initial() -> str:
    """The language a session starts in: the link's, else the browser's, else English."""
    return (i18n.normalise(st.query_params.get(PARAM)) or i18n.normalise(st.context.locale)
            or i18n.DEFAULT)


def current() -> str | None:
    """The running session's language, or None off a session's script thread."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    lang = st.session_state.get(KEY)
    return lang if lang in i18n.LANGUAGES else initial()


def switch(container=st.sidebar) -> str:
    """The language switch; keeps the choice in the session and the address. Call in app.py
    before anything is drawn."""
    if st.session_state.get(KEY) not in i18n.LANGUAGES:
        st.session_state[KEY] = initial()
    lang = container.segmented_control(LABEL, list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.get,
                                       key=KEY, required=True,
                                       label_visibility="collapsed") or i18n.DEFAULT  # names say it
    if st.query_params.get(PARAM) != lang:
        st.query_params[PARAM] = lang
    return lang


i18n.set_language_resolver(current)
