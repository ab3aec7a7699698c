"""Teacher mode (issue 9): on a shared classroom server, an optional password guards what costs
everyone (training, deleting saved runs, the number of jobs at once).

The password comes from Streamlit's secrets (`karp_teacher_password` in .streamlit/secrets.toml)
or the environment (KARP_TEACHER_PASSWORD). Without one, nothing is ever asked: a person alone
on a laptop just uses the app. With one, each browser session asks once and stays unlocked until
it locks itself; one session's unlocking never unlocks another (st.session_state is per tab).
Passwords are compared in constant time (hmac.compare_digest), and a wrong one costs a second.
"""
from __future__ import annotations

import hmac
import os
import time

import streamlit as st

from karp_models.i18n import _

SECRET = "karp_teacher_password"
ENV = "KARP_TEACHER_PASSWORD"
UNLOCKED = "teacher_unlocked"  # session_state flag
WRONG_DELAY_S = 1.0


def password() -> str | None:
    """The teacher password, or None when teacher mode is off (secrets first, then env)."""
    value = None
    try:
        value = st.secrets.get(SECRET)
    except Exception:  # no secrets.toml, or an unreadable one: not set
        value = None
    value = value or os.environ.get(ENV)
    return str(value) if value else None


def enabled() -> bool:
    return password() is not None


def unlocked() -> bool:
    """True when this session may train, delete runs and change the job limit."""
    return not enabled() or bool(st.session_state.get(UNLOCKED))


def check(attempt: str) -> bool:
    """Unlock this session if `attempt` is the password (constant-time comparison)."""
    pw = password()
    if pw is None:
        return True
    ok = hmac.compare_digest(attempt.encode(), pw.encode())
    if ok:
        st.session_state[UNLOCKED] = True
    else:
        time.sleep(WRONG_DELAY_S)  # guessing many passwords gets slow
    return ok


def gate(action: str, key: str, container=st) -> bool:
    """True when unlocked; else a password form saying what it unlocks, and False.

    action: what the password allows, in words (_("start training")). key: a page-prefixed widget
    key prefix (e.g. "train_teacher").
    """
    if unlocked():
        return True
    with container.form(f"{key}_form", border=True):
        st.markdown(_("**Teacher mode is on.** This is a shared server: the teacher's password "
                      "is needed to {action}.").format(action=action))
        attempt = st.text_input(_("Teacher password"), type="password", key=f"{key}_password")
        if st.form_submit_button(_("Unlock")):
            if check(attempt):
                st.rerun()
            st.error(_("That is not the teacher's password."))
    return False


def status_line(container=st) -> None:
    """A short caption saying whether teacher mode is on, and a Lock button when unlocked."""
    if not enabled():
        return
    if st.session_state.get(UNLOCKED):
        c1, c2 = container.columns([4, 1], vertical_alignment="center")
        c1.caption(_("Teacher mode: this browser tab is unlocked (training, deleting runs, "
                     "the job limit)."))
        if c2.button(_("Lock"), key="teacher_lock"):
            st.session_state.pop(UNLOCKED, None)
            st.rerun()
    else:
        container.caption(_("Teacher mode: training, deleting saved runs and the job limit "
                            "need the teacher's password on this shared server."))
