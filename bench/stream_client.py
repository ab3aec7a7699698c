"""A browserless Streamlit client: one real session over the app's websocket, as the browser's
frontend drives it, for the classroom load test (bench/bench_load.py).

What the frontend does and this does too (streamlit 1.67, web/server/starlette/
starlette_websocket.py and runtime/app_session.py):

- connects to ws://HOST:PORT/_stcore/stream with the subprotocol "streamlit" (the second and
  third entries, an XSRF token and a session id to resume, are left out: a fresh session, and
  without an Origin header the server does not ask for the XSRF cookie);
- sends BackMsg(rerun_script=ClientState(...)) to run the script: the page's script hash and
  url name (from the ForwardMsg `navigation` it received), the widget states it holds
  (WidgetStates: one WidgetState per widget the person changed; radio and selectbox send the
  chosen option's label as string_value, number_input a double_value, a button click
  trigger_value=True for that one run), and ContextInfo (time zone, locale, url);
- for a fragment with run_every it gets ForwardMsg `auto_rerun` (interval, fragment_id) and
  sends rerun_script with that fragment_id and is_auto_rerun=True at that interval;
- reads ForwardMsg deltas (new_element: widgets with their id and label, exception boxes,
  markdown, progress bars) until `script_finished` (FINISHED_EARLY_FOR_RERUN means another run
  follows: st.rerun, st.switch_page).

Widgets are found by label (as a person finds them), their ids read from the deltas.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

WIDGETS = {"button", "radio", "selectbox", "number_input", "slider", "checkbox", "toggle",
           "text_input", "multiselect", "select_slider"}
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
        ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


class SessionError(Exception):
    """The run failed: the connection dropped, the answer did not come in time, or a page
    could not be found."""


@dataclass
class Run:
    """What one rerun produced."""

    seconds: float
    exceptions: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)       # markdown, headings, progress texts


class StreamSession:
    """One Streamlit session (one browser tab) over the websocket."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the load test only talks to this machine's loopback")
        self.url = f"ws://{host}:{port}/_stcore/stream"
        self.page_url = f"http://{host}:{port}/"
        self.ws = None
        self.pages: dict[str, tuple[str, str]] = {}     # url name and title -> (hash, url name)
        self.page: tuple[str, str] = ("", "")           # current (script hash, url name)
        self.widgets: dict[str, tuple[str, object]] = {}  # label -> (type, proto)
        self.states: dict[str, WidgetState] = {}        # widget id -> the value this tab holds
        self.fragments: dict[str, float] = {}           # fragment id -> auto-rerun interval
        self.session_id = ""
        self.ref_hashes = 0                              # cached messages we could not read
        self._finished: asyncio.Queue[int] = asyncio.Queue()
        self._exceptions: list[str] = []
        self._texts: list[str] = []
        self._reader: asyncio.Task | None = None
        self.closed_reason: str | None = None

    # --- connection

    async def connect(self, timeout_s: float = 60) -> None:
        from websockets.asyncio.client import connect

        self.ws = await asyncio.wait_for(
            connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=timeout_s,
                    ping_interval=None, compression=None), timeout_s)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                if isinstance(data, str):
                    continue
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg)
        except Exception as e:  # noqa: BLE001 - reported to the waiting rerun
            self.closed_reason = f"{type(e).__name__}: {e}"
        else:
            self.closed_reason = self.closed_reason or "the server closed the connection"
        self._finished.put_nowait(-1)

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "delta":
            self._delta(msg.delta)
        elif kind == "script_finished":
            self._finished.put_nowait(msg.script_finished)
        elif kind == "navigation":
            for p in msg.navigation.app_pages:
                entry = (p.page_script_hash, p.url_pathname)
                self.pages[p.url_pathname] = entry
                self.pages[p.page_name] = entry
        elif kind == "new_session":
            if msg.new_session.HasField("initialize"):
                self.session_id = msg.new_session.initialize.session_id
        elif kind == "auto_rerun":
            self.fragments[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            self.fragments.clear()
        elif kind == "page_not_found":
            self._exceptions.append(f"page not found: {msg.page_not_found.page_name}")
        elif kind == "ref_hash":
            self.ref_hashes += 1

    def _delta(self, delta) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        t = el.WhichOneof("type")
        if t in WIDGETS:
            w = getattr(el, t)
            self.widgets[w.label] = (t, w)
        elif t == "exception":
            self._exceptions.append(f"{el.exception.type}: {el.exception.message}"[:300])
        elif t in ("markdown", "heading"):
            self._texts.append(getattr(el, t).body)
        elif t == "progress":
            self._texts.append(el.progress.text)

    # --- running the script

    async def rerun(self, page: str | None = None, *, trigger: str | None = None,
                    fragment_id: str = "", timeout_s: float = 120) -> Run:
        """Run the script (a page by url name or title, else the current one) with the widget
        states this tab holds, plus a click on the button labelled `trigger`; until it finished."""
        if self.ws is None:
            raise SessionError("not connected")
        if page is not None:
            if page not in self.pages and self.pages:
                raise SessionError(f"no page {page!r} (pages: {sorted(self.pages)})")
            self.page = self.pages.get(page, ("", ""))
            self.states.clear()            # the frontend drops the other page's widgets
            self.widgets.clear()
            self.fragments.clear()
        states = list(self.states.values())
        if trigger is not None:
            states.append(WidgetState(id=self._find(trigger, {"button"})[1].id, trigger_value=True))
        back = BackMsg()
        cs = back.rerun_script
        cs.query_string = ""
        cs.page_script_hash, cs.page_name = self.page
        cs.widget_states.widgets.extend(states)
        cs.context_info.CopyFrom(ContextInfo(timezone="UTC", timezone_offset=0, locale="en-US",
                                             url=self.page_url + self.page[1], is_embedded=False,
                                             color_scheme="light"))
        if fragment_id:
            cs.fragment_id = fragment_id
            cs.is_auto_rerun = True
        while not self._finished.empty():   # a stale end (e.g. an auto-rerun we did not ask for)
            self._finished.get_nowait()
        self._exceptions, self._texts = [], []
        t0 = time.perf_counter()
        try:
            await self.ws.send(back.SerializeToString())
        except Exception as e:  # noqa: BLE001
            raise SessionError(f"send failed: {type(e).__name__}: {e}") from e
        deadline = t0 + timeout_s
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise SessionError(f"no script_finished {timeout_s:.0f} s after the rerun")
            try:
                status = await asyncio.wait_for(self._finished.get(), left)
            except asyncio.TimeoutError:
                raise SessionError(f"no script_finished {timeout_s:.0f} s after the rerun") from None
            if status == -1:
                raise SessionError(f"disconnected: {self.closed_reason}")
            if status in DONE:
                break
        return Run(time.perf_counter() - t0, list(self._exceptions), list(self._texts))

    # --- widgets, by label

    def _find(self, label: str, kinds: set[str]) -> tuple[str, object]:
        for lab, (t, w) in self.widgets.items():
            if t in kinds and (lab == label or label in lab):
                return t, w
        raise SessionError(f"no {'/'.join(sorted(kinds))} labelled {label!r} on the page "
                           f"(widgets: {sorted(self.widgets)[:20]})")

    def choose(self, label: str, option: str) -> None:
        """A radio or selectbox: the first option containing `option`."""
        t, w = self._find(label, {"radio", "selectbox"})
        opts = list(w.options)
        pick = next((o for o in opts if o == option), None) or \
            next((o for o in opts if option in o), None)
        if pick is None:
            raise SessionError(f"{label!r} has no option {option!r} (options: {opts})")
        self.states[w.id] = WidgetState(id=w.id, string_value=pick)

    def number(self, label: str, value: float) -> None:
        _, w = self._find(label, {"number_input"})
        self.states[w.id] = WidgetState(id=w.id, double_value=float(value))
