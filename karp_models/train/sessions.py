"""Which owners of jobs are alive, for the job queue: heartbeats, the owners' open tabs and a
liveness probe for a tab, and the owners whose jobs were reaped. An owner is a browser's work
identity; it may have several tabs (Streamlit sessions), on any page. Not thread-safe on its own:
the JobManager holds its lock."""
from __future__ import annotations

import time
from typing import Callable


class Sessions:
    """An owner is alive while it sent a heartbeat within grace_s seconds, or the liveness probe
    (Streamlit's runtime: is the tab's websocket connected?) says one of its tabs is open (an
    owner with no tab noted is probed by its own name)."""

    def __init__(self, grace_s: float):
        self.grace_s = float(grace_s)
        self.beats: dict[str, float] = {}
        self.counts: dict[str, int] = {}  # runs submitted per owner, for default labels
        self.reaped: set[str] = set()     # owners whose jobs were stopped for want of a sign of life
        self.tabs: dict[str, set[str]] = {}  # owner -> its tabs seen (Streamlit session ids)
        self.liveness: Callable[[str], bool | None] | None = None

    def note_tab(self, owner: str, tab: str) -> None:
        """`tab` belongs to `owner`: the owner is alive while the tab is connected."""
        self.tabs.setdefault(owner, set()).add(tab)

    def beat(self, session_id: str, *, only_new: bool = False) -> None:
        """A sign of life now (only_new: unless the session already has one)."""
        if not only_new or session_id not in self.beats:
            self.beats[session_id] = time.monotonic()
        self.reaped.discard(session_id)

    def next_count(self, session_id: str) -> int:
        """1, 2, 3... for this session's runs, in the order they were submitted."""
        n = self.counts[session_id] = self.counts.get(session_id, 0) + 1
        return n

    def alive(self, session_id: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        beat = self.beats.get(session_id)
        if beat is not None and now - beat <= self.grace_s:
            return True
        if self.liveness is not None:
            tabs = self.tabs.get(session_id) or {session_id}
            for tab in list(tabs):
                try:
                    ok = self.liveness(tab)
                except Exception:  # noqa: BLE001 - a failing probe must not kill the reaper
                    ok = None
                if ok:
                    self.beats[session_id] = now  # a connected tab counts as a heartbeat
                    return True
                if ok is False and tab in self.tabs.get(session_id, ()):
                    self.tabs[session_id].discard(tab)  # closed: never asked again
        return False

    def forget_dead(self, keep: set[str], now: float) -> None:
        """Forget sessions that have no jobs left (not in `keep`) and no sign of life."""
        for sid in [s for s in self.beats if s not in keep and not self.alive(s, now)]:
            self.beats.pop(sid, None)
            self.counts.pop(sid, None)
            self.reaped.discard(sid)
            self.tabs.pop(sid, None)
