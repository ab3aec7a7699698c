"""The Ray side of an app server (issue 26): joining a cluster, its resources, and the client
process `python -m karp_models.rayclient FD` through which an app server reaches the queue actor
(train/clusterlink.ProcessLink starts it), so Ray never runs in the Streamlit process.

This module imports only the standard library and Ray (never torch, nor karp_models.train, whose
package imports torch): the client process stays small (Ray and Python, about 0.1 GB), and it
never unpickles karp's objects. Calls arrive as pickled bytes (method, args, kwargs) that the
queue actor runs and answers as pickled bytes (Queue.blob); the client only carries them.

Why a separate process: a Ray driver whose cluster stops answering for about a minute is ended
by Ray itself ("Failed to connect to GCS ... The program will terminate"). The client is that
driver; the app server outlives it and starts another (ProcessLink).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

NAMESPACE = "karp"
QUEUE_NAME = "karp-queue"
ROOT = Path(__file__).resolve().parent.parent   # the checkout: on every node's PYTHONPATH


class Unreachable(Exception):
    """Ray could not be joined; `why`: the type name of the error behind it."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def _ray():
    import ray  # an optional dependency: only the Ray backend imports it

    return ray


def connect(address: str | None = None, *, timeout_s: float = 20.0, **local: Any) -> None:
    """Join the Ray cluster at `address` ("auto", "ray://host:10001", "host:6379"), or start a
    local one when it is None or "local" (`local`: ray.init's keywords, say num_cpus). Workers
    find karp on PYTHONPATH (this checkout: every node needs the same checkout at the same
    path, and the same venv). Raises Unreachable when it cannot connect in `timeout_s`."""
    ray = _ray()
    if ray.is_initialized():
        return
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in os.environ.get(
        "PYTHONPATH", "").split(os.pathsep) if p]), "KARP_LANG": os.environ.get("KARP_LANG", "")}
    env.update({k: v for k, v in os.environ.items() if k in ("KARP_THREADS", "KARP_CACHE",
                                                             "KARP_FASHION_MNIST_DIR",
                                                             "KARP_FORTUNES_ZH_DIR")})
    kw: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False,
                          "runtime_env": {"env_vars": env}}
    if address in (None, "", "local"):  # "local": a new cluster, never one already running here
        kw.update({"address": "local", "include_dashboard": False, **local})
    else:
        kw["address"] = address
    done: dict[str, BaseException | None] = {}
    ready = threading.Event()

    def init() -> None:
        try:
            ray.init(**kw)
            done["error"] = None
        except BaseException as e:  # noqa: BLE001 - reported below
            done["error"] = e
            return
        finally:
            ready.set()
        # A local cluster's processes die with the thread that started them (Linux's
        # PR_SET_PDEATHSIG, which Ray sets, follows the thread): this one stays for good.
        threading.Event().wait()

    threading.Thread(target=init, name="ray-init-keeper", daemon=True).start()
    ready.wait(timeout_s)
    if "error" not in done:
        raise Unreachable("TimeoutError")
    if done["error"] is not None:
        raise Unreachable(type(done["error"]).__name__) from done["error"]


def resources() -> dict[str, float]:
    """The cluster's CPUs, GPUs and alive nodes: {'CPU': 8.0, 'GPU': 2.0, 'nodes': 3}."""
    ray = _ray()
    total = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return {"CPU": float(total.get("CPU", 0)), "GPU": float(total.get("GPU", 0)), "nodes": nodes}


class QueueShell:
    """The queue actor's class: a shell in this light module around clusterqueue.Queue, which
    it makes inside the actor's own process. A process that looks the actor up (ray.get_actor)
    imports the class's module, and this one does not bring torch into the client."""

    def __init__(self, gpu: bool, cpus: float):
        from karp_models.train.clusterqueue import Queue

        self.queue = Queue(gpu, cpus)

    def blob(self, blob: bytes) -> bytes:
        return self.queue.blob(blob)

    def open(self, queue: str, kw: dict) -> dict:
        return self.queue.open(queue, kw)

    def drop(self, queue: str, timeout: float | None = 30.0) -> None:
        return self.queue.drop(queue, timeout)

    def call(self, queue: str, method: str, *args: Any, **kw: Any) -> Any:
        return self.queue.call(queue, method, *args, **kw)

    def get(self, queue: str, name: str) -> Any:
        return self.queue.get(queue, name)

    def set(self, queue: str, name: str, value: Any) -> None:
        return self.queue.set(queue, name, value)

    def field(self, queue: str, job_id: str, name: str) -> Any:
        return self.queue.field(queue, job_id, name)

    def heartbeats(self, queue: str, owners: list) -> None:
        return self.queue.heartbeats(queue, owners)

    def report(self, job_id: str, token: str, d: dict) -> bool:
        return self.queue.report(job_id, token, d)

    def stop_requested(self, job_id: str, token: str) -> bool:
        return self.queue.stop_requested(job_id, token)


def queue_actor(job_cpus: float) -> Any:
    """The queue actor's handle (`karp-queue`, detached, on the head node), made first when
    there is none. Ray must be connected."""
    ray = _ray()
    return ray.remote(QueueShell).options(
        name=QUEUE_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        num_cpus=0, max_concurrency=1000, max_restarts=0,
        resources={"node:__internal_head__": 0.001}).remote(resources()["GPU"] > 0, job_cpus)


# --- the client process


def _serve(conn: Any) -> None:
    """Join the cluster the first message names, open its queue, then carry calls until the
    pipe closes (the app server stopped) or Ray ends this process (the cluster went away).

    Messages in: (rid, op, payload, timeout) with op 'blob' (pickled bytes for Queue.blob;
    rid None: not answered), 'resources' or 'close'. Out: (rid, 'ok', value) or
    (rid, 'unavailable', the error's type name)."""
    init = conn.recv()
    ray = None
    try:
        connect(init["address"], timeout_s=init["connect_s"])
        ray = _ray()
        actor = queue_actor(init["job_cpus"])
        opened = [ray.get(actor.blob.remote(b), timeout=120) for b in init["blobs"]]
        conn.send((0, "ok", opened))
    except BaseException as e:  # noqa: BLE001 - reported to the app server
        conn.send((0, "unavailable", getattr(e, "why", type(e).__name__)))
        os._exit(0)
    send = threading.Lock()

    def answer(rid: int, op: str, payload: Any, timeout: float | None) -> None:
        try:
            out = (rid, "ok", resources() if op == "resources"
                   else ray.get(actor.blob.remote(payload), timeout=timeout))
        except Exception as e:  # noqa: BLE001 - the cluster or the actor is away
            out = (rid, "unavailable", type(e).__name__)
        with send:
            try:
                conn.send(out)
            except (OSError, EOFError):
                pass

    pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="karp-ray-call")
    while True:
        try:
            rid, op, payload, timeout = conn.recv()
        except (EOFError, OSError):
            break
        if op == "close":
            break
        if rid is None:
            try:
                actor.blob.remote(payload)
            except Exception:  # noqa: BLE001 - the cluster is away; the server says so
                pass
        else:
            pool.submit(answer, rid, op, payload, timeout)
    threading.Thread(target=ray.shutdown, daemon=True).start()   # the app server is gone
    time.sleep(2.0)
    os._exit(0)


if __name__ == "__main__":
    from multiprocessing.connection import Connection

    _serve(Connection(int(sys.argv[1])))
