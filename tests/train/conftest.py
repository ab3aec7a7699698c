"""Training tests: one torch thread (tiny models; a second spinning OpenMP thread on a shared
2-core machine makes each op 10-100x slower), restored afterwards.

The job-manager tests run against both backends (`make_manager`): the in-process one (worker
threads) and the Ray one (train/cluster.py): a local Ray cluster started once per test session
(a head node with no CPUs for the queue actor, plus one worker node with 2 CPUs and small
memory limits, CPU only) and stopped at its end; each manager is its own queue in the one queue actor."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster (head + one worker node, 2 CPUs), connected, for the whole session;
    its workers import the tests' builders from this folder."""
    from ray.cluster_utils import Cluster

    import ray
    from karp_models.train import cluster

    mem = 80 * 1024 ** 2
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": mem, "include_dashboard": False})
    c.add_node(num_cpus=2, object_store_memory=mem)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), old) if p)
    try:
        cluster.connect(c.address, timeout_s=60)
        # warm both worker processes (torch and karp imported once, not in each test's budget)
        warm = ray.remote(num_cpus=1)(_warm)
        ray.get([warm.remote() for _ in range(2)])
        yield c
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
        ray.shutdown()
        c.shutdown()


def _warm() -> int:
    import karp_models.train.worker  # noqa: F401 - torch and the trainer, imported once

    return os.getpid()


@pytest.fixture(params=["process", "ray"])
def backend(request) -> str:
    """Which job-manager backend a test runs against."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return request.param


@pytest.fixture
def make_manager(backend, tmp_path):
    """make_manager(**JobManager keywords): a JobManager of this test's backend; every one made
    is shut down (and its queue removed from the actor) at the end of the test."""
    from karp_models.train.jobs import JobManager

    made = []

    def make(**kw):
        if backend == "ray":
            from karp_models.train.cluster import RayJobManager

            kw.setdefault("runs_dir", tmp_path / "runs-default")
            m = RayJobManager(queue=f"test-{uuid.uuid4().hex[:8]}", timeout_s=30.0, **kw)
        else:
            m = JobManager(**kw)
        made.append(m)
        return m

    make.backend = backend
    yield make
    for m in made:
        try:
            m.shutdown(timeout=10)
        finally:
            if backend == "ray":
                m.close()
