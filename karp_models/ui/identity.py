"""This browser's anonymous work identity (issue 18): a random id kept in a cookie, so a refreshed
or reopened tab, or one reconnecting after a server restart, finds its training runs and its last
upload again, and another browser cannot see them. No accounts and no names.

Streamlit reads cookies (st.context.cookies: those the browser sent when the tab connected) but
cannot set one, so the first visit writes it with a line of JavaScript (st.html runs it in the
page itself, not in an iframe); every later connection of this browser sends it back. The id
never appears in a link unless the person asks for one (`?work=<id>` opens the same work in
another browser, which then keeps it in its own cookie, and the parameter leaves the address at
once). Only a hash of it, the owner tag (train/workspace.owner_tag), reaches the job queue and
the disk. The browser's last upload is kept there too (train/workspace.py), within its quota.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import streamlit as st

from karp_models.i18n import _
from karp_models.train import workspace

COOKIE = "karp_work"
PARAM = "work"
KEY = "karp_work_id"                    # session_state: this tab's work id
_WRITE = "karp_work_write"              # session_state: the cookie still has to be written
MAX_AGE_S = 400 * 24 * 3600             # browsers cap a cookie's life at 400 days



def _cookie() -> str | None:
    try:
        return st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no browser context (a bare script run)
        return None


def work_id() -> str:
    """This browser's work id: from `?work=` (opening one's work elsewhere), else the cookie,
    else a new one. Kept in the session; the cookie is written by remember()."""
    wid = st.session_state.get(KEY)
    if wid:
        return wid
    asked = st.query_params.get(PARAM)
    if asked is not None:
        del st.query_params[PARAM]      # the id must not stay in an address someone may share
        if workspace.valid_work_id(asked):
            wid = asked
    if wid is None and workspace.valid_work_id(_cookie()):
        wid = _cookie()
    wid = wid or workspace.new_work_id()
    st.session_state[KEY] = wid
    st.session_state[_WRITE] = wid != _cookie()
    return wid


def owner() -> str:
    """The owner tag of this browser's work: what the job queue and the disk know it by."""
    return workspace.owner_tag(work_id())


def remember(container=st.sidebar) -> None:
    """Write the work id into this browser's cookie (once a session, when it is not there yet).
    Call on every page (app.py does)."""
    wid = work_id()
    if not st.session_state.pop(_WRITE, False):
        return
    cookie = f"{COOKIE}={wid}; path=/; max-age={MAX_AGE_S}; SameSite=Lax"
    container.html(f"<script>document.cookie = {json.dumps(cookie)};</script>",
                   unsafe_allow_javascript=True, width=1)


def keep_upload(name: str, data: bytes) -> str | None:
    """Keep this browser's last upload on the server, so a refreshed tab shows it again; why it
    could not be kept (a quota, the disk), or None."""
    try:
        workspace.keep_upload(owner(), name, data)
    except (ValueError, OSError) as e:
        return str(e)
    return None


def kept_upload() -> tuple[str, bytes] | None:
    """(file name, bytes) of this browser's last upload kept on the server, or None."""
    try:
        return workspace.kept_upload(owner())
    except (ValueError, OSError):  # no usable runs folder: nothing was kept there
        return None


def forget_upload() -> None:
    """Delete this browser's kept upload from the server."""
    try:
        workspace.forget_upload(owner())
    except (ValueError, OSError):
        pass


def link() -> str:
    """The address that opens this work in another browser (a secret: it gives the work)."""
    try:
        url = urlsplit(st.context.url or "")
    except Exception:  # noqa: BLE001 - AppTest and bare runs have no URL
        url = urlsplit("")
    base = st.get_option("server.baseUrlPath").strip("/")
    origin = f"{url.scheme}://{url.netloc}" if url.netloc else "http://localhost:8501"
    return f"{origin}/{base + '/' if base else ''}?{PARAM}={work_id()}"


def another_browser_note(container=st) -> None:
    """A popover with the link that opens this work in another browser, and what it gives."""
    with container.popover(_("Use another browser"), icon=":material/devices:"):
        st.markdown(_("Your runs belong to this browser, without an account. To see them from "
                      "another computer or browser, open this address there:"))
        st.code(link(), language=None)
        st.caption(_("Anyone with this address can see, stop and resume your runs: share it "
                     "with no one."))
