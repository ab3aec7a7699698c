"""How an app server reaches the Ray cluster's queue actor (issue 26): DirectLink, from a process
connected to Ray (tests, benches), or ProcessLink, through a small client process
(`python -m karp_models.rayclient`, which imports Ray but not torch), so that Ray is never in the
app server's own process.

Why a client process: a Ray driver whose cluster stops answering for about a minute is ended by
Ray itself ("Failed to connect to GCS ... The program will terminate"), and a Streamlit server
that is a Ray driver would take every student's session with it. When Ray ends the client, the
app server says the cluster does not answer, keeps serving everything else, and starts a new
client at most every `retry_s` seconds until the cluster is back (then the queue reads the runs
the cluster's jobs autosaved, as at a server's start).

Every call is one message on a socket pair with a request id, answered from a thread of the
client, so a long wait does not hold up other sessions' calls. The call itself is pickled here
and run by the actor (Queue.blob); its answer is the actor's value or the actor's own exception
(a QueueFull, a KeyError ...), or "unavailable" with the reason's type name, made into a
ClusterUnavailable here, in the caller's language. POSIX only (the client gets its end of the
socket pair as an inherited descriptor); elsewhere the server is a Ray driver itself.
"""
from __future__ import annotations

import itertools
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from typing import Any

from karp_models import rayclient
from karp_models.train.cluster import ClusterUnavailable, _ray, connect, resources, unavailable


class DirectLink:
    """Calls on the queue actor from this process, which is connected to Ray (connect())."""

    def __init__(self, queue: str, kw: dict, job_cpus: float):
        self.actor = rayclient.queue_actor(job_cpus)
        self.settings = self.call("open", (queue, kw), {}, 120.0)

    def call(self, method: str, args: tuple, kw: dict, timeout: float | None) -> Any:
        """The actor's `method(*args, **kw)`, waiting at most `timeout` s; raises the actor's own
        exception, or ClusterUnavailable when the cluster or the actor does not answer."""
        ray = _ray()
        try:
            return ray.get(getattr(self.actor, method).remote(*args, **kw), timeout=timeout)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
                raise cause from None
            raise unavailable(e) from e
        except (ray.exceptions.RayError, TimeoutError) as e:
            raise unavailable(e) from e

    def cast(self, method: str, args: tuple) -> None:
        """The actor's `method(*args)`, not waited for; nothing when the cluster is away."""
        try:
            getattr(self.actor, method).remote(*args)
        except Exception:  # noqa: BLE001 - the cluster is away; the page says so elsewhere
            pass

    def resources(self) -> dict[str, float]:
        try:
            return resources()
        except Exception as e:  # noqa: BLE001 - gone away
            raise unavailable(e) from e

    def close(self) -> None:
        pass


def _blob(method: str, args: tuple, kw: dict) -> bytes:
    return pickle.dumps((method, args, kw))


def _unblob(data: bytes) -> Any:
    status, value = pickle.loads(data)
    if status == "raise":
        raise value
    return value


class ProcessLink:
    """Calls on the queue actor through a client process (see the module's docstring).

    address: KARP_RAY_ADDRESS ('local': the client starts a cluster of its own); kw: the queue's
    JobManager keywords; connect_s: how long a client may take to connect; retry_s: the least
    time between two client starts after the first. Raises ClusterUnavailable when the first
    client cannot connect."""

    def __init__(self, address: str | None, queue: str, kw: dict, job_cpus: float, *,
                 connect_s: float = 20.0, retry_s: float = 10.0):
        self.address, self.connect_s, self.retry_s = address, connect_s, retry_s
        self.job_cpus = job_cpus
        self._open = _blob("open", (queue, kw), {})
        self._recover = _blob("call", (queue, "recover"), {})
        self._lock, self._send = threading.Lock(), threading.Lock()
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count(1)
        self._conn: Connection | None = None
        self.process: subprocess.Popen | None = None
        self._restarting = False
        self._last_start = 0.0
        self.starts = 0
        self.settings = self._start(recover=False)

    def _start(self, recover: bool) -> dict:
        """Start a client and wait until it has opened the queue (and, after the first, read the
        runs the cluster's jobs autosaved); the queue's settings."""
        self._last_start = time.monotonic()
        here, there = socket.socketpair()
        path = [str(rayclient.ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        p = subprocess.Popen([sys.executable, "-m", "karp_models.rayclient", str(there.fileno())],
                             pass_fds=(there.fileno(),), cwd=rayclient.ROOT,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(path)),
                             stdin=subprocess.DEVNULL)
        there.close()
        conn = Connection(here.detach())
        try:
            conn.send({"address": self.address, "connect_s": self.connect_s,
                       "job_cpus": self.job_cpus,
                       "blobs": [self._open] + ([self._recover] if recover else [])})
            ok = conn.poll(self.connect_s + 130.0)
            status, payload = conn.recv()[1:] if ok else ("unavailable", "TimeoutError")
        except (EOFError, OSError) as e:
            status, payload = "unavailable", type(e).__name__
        if status != "ok":
            p.kill()
            p.wait()
            conn.close()
            raise unavailable(payload)
        with self._lock:
            self._conn, self.process = conn, p
            self.starts += 1
        threading.Thread(target=self._read, args=(conn, p), name="karp-ray-link",
                         daemon=True).start()
        return _unblob(payload[0])

    def _read(self, conn: Connection, p: subprocess.Popen) -> None:
        while True:
            try:
                rid, status, payload = conn.recv()
            except (EOFError, OSError):
                break
            fut = self._pending.pop(rid, None)
            if fut is not None:
                fut.set_result((status, payload))
        with self._lock:   # the client ended (Ray ended it, or it was killed)
            if self._conn is conn:
                self._conn = None
            pending = list(self._pending.values())
            self._pending.clear()
        for fut in pending:
            if not fut.done():
                fut.set_result(("unavailable", "ConnectionError"))
        p.wait()       # no zombie
        conn.close()

    def _restart(self) -> None:
        try:
            self._start(recover=True)
        except ClusterUnavailable:
            pass
        finally:
            with self._lock:
                self._restarting = False

    def _connection(self) -> Connection:
        """The client's socket; ClusterUnavailable (and a new client on its way, at most every
        retry_s) when there is none."""
        with self._lock:
            if self._conn is not None:
                return self._conn
            if not self._restarting and time.monotonic() - self._last_start >= self.retry_s:
                self._restarting = True
                threading.Thread(target=self._restart, name="karp-ray-restart",
                                 daemon=True).start()
        raise unavailable("ConnectionError")

    def _ask(self, op: str, payload: Any, timeout: float | None) -> Any:
        conn = self._connection()
        rid, fut = next(self._ids), Future()
        self._pending[rid] = fut
        try:
            with self._send:
                conn.send((rid, op, payload, timeout))
            if self._conn is not conn:   # the client ended while this was sent
                raise unavailable("ConnectionError")
            status, out = fut.result(None if timeout is None else timeout + 5.0)
        except (OSError, EOFError) as e:
            raise unavailable(e) from e
        except FutureTimeout:
            raise unavailable("TimeoutError") from None
        finally:
            self._pending.pop(rid, None)
        if status != "ok":
            raise unavailable(out)
        return out

    def call(self, method: str, args: tuple, kw: dict, timeout: float | None) -> Any:
        """As DirectLink.call, through the client (which waits `timeout`; this side a little
        longer, then gives up on it)."""
        return _unblob(self._ask("blob", _blob(method, args, kw), timeout))

    def cast(self, method: str, args: tuple) -> None:
        try:
            conn = self._connection()
            with self._send:
                conn.send((None, "blob", _blob(method, args, {}), None))
        except (ClusterUnavailable, OSError, EOFError):
            pass

    def resources(self) -> dict[str, float]:
        return self._ask("resources", None, 10.0)

    def close(self) -> None:
        """End the client (it leaves the cluster; jobs on the cluster go on)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:  # a message: closing alone does not wake a read blocked in another thread
                with self._send:
                    conn.send((None, "close", None, None))
            except (OSError, EOFError):
                pass
        if self.process is not None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def make_link(address: str | None, queue: str, kw: dict, job_cpus: float, *,
              connect_s: float = 20.0) -> DirectLink | ProcessLink:
    """The link an app server uses: a client process where the platform passes descriptors to
    children (POSIX), else this process joins the cluster itself (Windows)."""
    if os.name == "posix":
        return ProcessLink(address, queue, kw, job_cpus, connect_s=connect_s)
    connect(address, timeout_s=connect_s)
    return DirectLink(queue, kw, job_cpus)
