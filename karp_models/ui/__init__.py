"""The only part of karp_models that imports streamlit: cached loaders, widgets, figure builders.

Importing it also leaves Streamlit's `pages/` folder mode (see _use_app_navigation).
"""


def _use_app_navigation() -> None:
    """Make a page link opened first on a fresh server run through app.py's navigation.

    With a `pages/` folder next to app.py, Streamlit starts in its old multipage mode until some
    script calls st.navigation: a first visit to e.g. /predict runs pages/predict.py alone, with a
    sidebar of file names, and the whole server stays in that mode. Every page imports this
    package, so here that mode is turned off (the flag st.navigation itself clears) and the
    script rerun, this time through app.py.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # another Streamlit layout: nothing to fix
        return
    if PagesManager.uses_pages_directory:  # None outside a server, False once app.py has run
        import streamlit as st

        PagesManager.uses_pages_directory = False
        st.rerun()


_use_app_navigation()

from karp_models.ui import language as _language  # noqa: E402,F401 - _() follows the session's language
