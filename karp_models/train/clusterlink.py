"""How an app server reaches the Ray cluster's queue actor (issue 26): DirectLink, from a process
connected to Ray (tests, benches, the client process), or ProcessLink, through a small client
process, so that Ray is never in the app server's own process.

Why a client process: a Ray driver whose cluster stops answering for about a minute is ended by
Ray itself ("Failed to connect to GCS ... The program will terminate"), and a Streamlit server
that is a Ray driver would take every student's session with it. The client process
(`karp-ray-client`, started with multiprocessing's spawn) is the driver instead: when Ray ends
it, the app server says the cluster does not answer, keeps serving everything else, and starts a
new client at most every `retry_s` seconds until the cluster is back (then the queue reads the
runs the cluster's jobs autosaved, as at a server's start).

Every call is one message on a pipe with a request id, answered from a thread of the client, so
a long wait does not hold up other sessions' calls; the answer is the actor's value, the
actor's own exception (a QueueFull, a KeyError ...), or "unavailable" with the reason's type
name, made into a ClusterUnavailable here in the caller's language.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from karp_models.train.cluster import (NAMESPACE, QUEUE_NAME, ClusterUnavailable, _ray, connect,
                                       resources, unavailable)


def open_queue(queue: str, kw: dict, job_cpus: float) -> tuple[Any, dict]:
    """The queue actor (made unless it is there) and the settings of its queue `queue` (made with
    JobManager keywords `kw` unless it is there; `limit=None`: as many jobs at once as the
    cluster has GPUs, else CPUs / `job_cpus`). Ray must be connected."""
    from karp_models.train.clusterqueue import Queue

    ray = _ray()
    res = resources()
    kw = dict(kw)
    if "limit" in kw and kw["limit"] is None:
        kw["limit"] = int(res["GPU"]) if res["GPU"] >= 1 else max(1, int(res["CPU"] // job_cpus))
    actor = ray.remote(Queue).options(
        name=QUEUE_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        num_cpus=0, max_concurrency=1000, max_restarts=0,
        resources={"node:__internal_head__": 0.001}).remote(res["GPU"] > 0, job_cpus)
    return actor, ray.get(actor.open.remote(queue, kw), timeout=120)


class DirectLink:
    """Calls on the queue actor from this process, which is connected to Ray (connect())."""

    def __init__(self, queue: str, kw: dict, job_cpus: float):
        self.actor, self.settings = open_queue(queue, kw, job_cpus)

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


def _client(conn: Any, init: dict) -> None:
    """The client process: connect, open the queue, then answer the app server's calls until
    its pipe closes (the app server stopped) or Ray ends this process (the cluster went away)."""
    os.environ.update(init.get("env", {}))
    try:
        connect(init["address"], timeout_s=init["connect_s"])
        link = DirectLink(init["queue"], init["kw"], init["job_cpus"])
        if init["recover"]:  # a new queue actor, or one that lost the app: read the autosaves
            link.call("call", (init["queue"], "recover"), {}, 120.0)
        conn.send((0, "ok", link.settings))
    except BaseException as e:  # noqa: BLE001 - reported to the app server
        conn.send((0, "unavailable", getattr(e, "why", type(e).__name__)))
        os._exit(0)
    send = threading.Lock()

    def answer(rid: int, method: str, args: tuple, kw: dict, timeout: float | None) -> None:
        try:
            out = (rid, "ok", link.resources() if method == "_resources"
                   else link.call(method, args, kw, timeout))
        except ClusterUnavailable as e:
            out = (rid, "unavailable", e.why)
        except Exception as e:  # noqa: BLE001 - the actor's own error, for the caller
            out = (rid, "raise", e)
        with send:
            try:
                conn.send(out)
            except (OSError, EOFError):
                pass
            except Exception as e:  # noqa: BLE001 - an answer pickle cannot carry
                conn.send((rid, "raise", RuntimeError(f"{type(e).__name__}: {e}")))

    pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="karp-ray-call")
    while True:
        try:
            rid, method, args, kw, timeout = conn.recv()
        except (EOFError, OSError):
            break
        if method == "_close":
            break
        if rid is None:
            link.cast(method, args)
        else:
            pool.submit(answer, rid, method, args, kw, timeout)
    threading.Thread(target=_ray().shutdown, daemon=True).start()   # the app server is gone
    time.sleep(2.0)
    os._exit(0)


class ProcessLink:
    """Calls on the queue actor through a client process (see the module's docstring).

    address: KARP_RAY_ADDRESS ('local': the client starts a cluster of its own); connect_s: how
    long a client may take to connect; retry_s: the least time between two client starts after
    the first. Raises ClusterUnavailable when the first client cannot connect."""

    def __init__(self, address: str | None, queue: str, kw: dict, job_cpus: float, *,
                 connect_s: float = 20.0, retry_s: float = 10.0):
        self.init = {"address": address, "queue": queue, "kw": kw, "job_cpus": job_cpus,
                     "connect_s": connect_s, "recover": False,
                     "env": {k: v for k, v in os.environ.items() if k.startswith(("KARP_", "RAY_"))}}
        self.retry_s = retry_s
        self._lock, self._send = threading.Lock(), threading.Lock()
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count(1)
        self._conn: Any = None
        self.process: Any = None
        self._restarting = False
        self._last_start = 0.0
        self.starts = 0
        self.settings = self._start()
        self.init["recover"] = True

    def _start(self) -> dict:
        """Start a client and wait until it has opened the queue; its settings."""
        self._last_start = time.monotonic()
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        p = ctx.Process(target=_client, args=(there, self.init), name="karp-ray-client",
                        daemon=True)
        p.start()
        there.close()
        try:
            ok = here.poll(self.init["connect_s"] + 130.0)
            status, payload = here.recv()[1:] if ok else ("unavailable", "TimeoutError")
        except (EOFError, OSError) as e:
            status, payload = "unavailable", type(e).__name__
        if status != "ok":
            p.kill()
            here.close()
            raise unavailable(payload)
        with self._lock:
            self._conn, self.process = here, p
            self.starts += 1
        threading.Thread(target=self._read, args=(here,), name="karp-ray-link",
                         daemon=True).start()
        return payload

    def _read(self, conn: Any) -> None:
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
            pending = [f for f in self._pending.values()]
            self._pending.clear()
        for fut in pending:
            if not fut.done():
                fut.set_result(("unavailable", "ConnectionError"))

    def _restart(self) -> None:
        try:
            self._start()
        except ClusterUnavailable:
            pass
        finally:
            with self._lock:
                self._restarting = False

    def _connection(self) -> Any:
        """The client's pipe; ClusterUnavailable (and a new client on its way, at most every
        retry_s) when there is none."""
        with self._lock:
            if self._conn is not None:
                return self._conn
            if not self._restarting and time.monotonic() - self._last_start >= self.retry_s:
                self._restarting = True
                threading.Thread(target=self._restart, name="karp-ray-restart",
                                 daemon=True).start()
        raise unavailable("ConnectionError")

    def call(self, method: str, args: tuple, kw: dict, timeout: float | None) -> Any:
        """As DirectLink.call, through the client (which waits `timeout`; this side a little
        longer, then gives up on it)."""
        conn = self._connection()
        rid, fut = next(self._ids), Future()
        self._pending[rid] = fut
        try:
            with self._send:
                conn.send((rid, method, args, kw, timeout))
            if self._conn is not conn:   # the client ended while this was sent
                raise unavailable("ConnectionError")
            status, payload = fut.result(None if timeout is None else timeout + 5.0)
        except (OSError, EOFError) as e:
            raise unavailable(e) from e
        except FutureTimeout:
            raise unavailable("TimeoutError") from None
        finally:
            self._pending.pop(rid, None)
        if status == "ok":
            return payload
        if status == "raise":
            raise payload
        raise unavailable(payload)

    def cast(self, method: str, args: tuple) -> None:
        try:
            conn = self._connection()
            with self._send:
                conn.send((None, method, args, {}, None))
        except (ClusterUnavailable, OSError, EOFError):
            pass

    def resources(self) -> dict[str, float]:
        return self.call("_resources", (), {}, 10.0)

    def close(self) -> None:
        """End the client (it leaves the cluster; jobs on the cluster go on)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:  # a message: closing alone does not wake a read blocked in another thread
                with self._send:
                    conn.send((None, "_close", (), {}, None))
            except (OSError, EOFError):
                pass
        if self.process is not None:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(10)
