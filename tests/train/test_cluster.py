"""The Ray backend's faults (issue 26): a training process killed on its node, a queue that stops
answering, a cluster that cannot be reached at start. The job-manager suite itself runs on both
backends (test_jobs, test_faults, test_persist through conftest.make_manager)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from karp_models.train import workspace as ws
from karp_models.train.checkpoints import load_checkpoint
from test_persist import builder, spec, until
from train_helpers import install_fake_registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def ray_mgr(ray_cluster, tmp_path, monkeypatch):
    from karp_models.train.cluster import RayJobManager

    install_fake_registry(monkeypatch)  # load_checkpoint rebuilds 'tinynet' here
    m = RayJobManager(queue=f"kill-{os.getpid()}-{time.monotonic_ns()}", timeout_s=30.0,
                      builder=builder, runs_dir=tmp_path, set_threads=False, autosave_steps=10,
                      limit=2, quota=ws.Quota(per_owner=0, total=0, reserve=0))
    yield m
    m.close(timeout=10)


def pid_of(where: str) -> int:
    """The process id in a job's `where` ('host (10.0.0.5) pid 4242')."""
    return int(re.search(r"pid (\d+)$", where).group(1))


def test_a_job_killed_on_its_worker_fails_with_a_message_and_the_others_finish(ray_mgr, tmp_path):
    m = ray_mgr
    first = m.submit("s", spec(steps=20))
    assert m.wait(first, 30).state == "done"
    saved = m.save(first, "before-the-kill")
    before = saved.read_bytes()

    victim = m.submit("alice", spec(delay=0.01))
    other = m.submit("bob", spec(steps=300, delay=0.01))
    until(lambda: m.status(victim).step >= 20 and m.status(other).step >= 10, timeout=60)
    v, o = m.status(victim), m.status(other)
    assert v.where and o.where and pid_of(v.where) != pid_of(o.where)   # two processes
    os.kill(pid_of(v.where), signal.SIGKILL)                            # the worker dies mid-run

    st = until(lambda: (s := m.status(victim)).state == "error" and s, timeout=60)
    assert "stopped unexpectedly" in st.error and "Runs already saved are safe" in st.error
    assert str(pid_of(v.where)) in st.error                             # says where it was
    assert m.wait(other, 120).state == "done"                           # the other one finishes
    assert saved.read_bytes() == before and load_checkpoint(saved).model_name == "tinynet"
    assert m.running_slots == 0                                         # no slot leaked

    assert st.on_disk and st.autosaved_step >= 10                       # its last autosave is kept
    m.resume(victim, owner="alice")                                     # and continues from it
    until(lambda: m.status(victim).step >= st.autosaved_step + 20, timeout=60)
    steps = [r.step for r in m.status(victim).records if not r.final]
    assert steps == sorted(set(steps)) and steps[0] == 10
    m.stop(victim, wait=True, timeout=30)
    assert m.status(victim).state == "stopped"


def test_a_queue_that_stops_answering_is_a_message_not_a_traceback(ray_mgr):
    import ray

    from karp_models.train.cluster import ClusterUnavailable

    m = ray_mgr
    jid = m.submit("s", spec(steps=20))
    assert m.wait(jid, 30).state == "done"
    known = m.jobs("s")
    live = m.link.actor

    @ray.remote(num_cpus=0)
    class Gone:  # the queue's methods, on an actor that is killed at once
        def call(self, *a, **k): ...

        def heartbeats(self, *a): ...

    dead = Gone.remote()
    ray.kill(dead)
    m.link.actor = dead                                      # the queue's actor is gone
    m.fail_fast_s = 0.0
    try:
        t0 = time.monotonic()
        assert [j.job_id for j in m.jobs("s")] == [j.job_id for j in known]  # the last known list
        assert all(j.stale for j in m.jobs("s")) and not any(j.stale for j in known)  # marked so
        assert m.problem and time.monotonic() - t0 < 30
        with pytest.raises(ClusterUnavailable, match="does not answer"):
            m.submit("s", spec(steps=20))
        with pytest.raises(ValueError):                 # what the page's actions catch
            m.stop(jid, owner="s")
        m.heartbeat("s")                                # never raises, never waits
    finally:
        m.link.actor = live
    assert m.jobs("s") and m.problem is None            # back: the message goes


def test_a_cluster_found_away_refuses_at_once_for_a_while(ray_mgr):
    """QA: in the minute before Ray ends a client whose head died, every call waited its whole
    time out (pages took 7-30 s). After one call finds the cluster away, calls are refused at once
    for fail_fast_s, then tried again."""
    from karp_models.train.cluster import ClusterUnavailable, unavailable

    m, calls = ray_mgr, []

    class Hanging:                                      # a link whose cluster never answers
        def call(self, method, args, kw, timeout):
            calls.append(method)
            time.sleep(min(timeout, 1.0))
            raise unavailable("GetTimeoutError")

        def cast(self, method, args):
            pass

    live, m.link, m.fail_fast_s = m.link, Hanging(), 1.5
    try:
        t0 = time.monotonic()
        m.jobs("s")
        assert time.monotonic() - t0 >= 1.0 and len(calls) == 1 and m.problem
        t0 = time.monotonic()
        for _ in range(5):
            m.jobs("s")                                  # the last known list, at once
            with pytest.raises(ClusterUnavailable, match="GetTimeoutError"):
                m.status("nope")
        assert time.monotonic() - t0 < 0.5 and len(calls) == 1
        time.sleep(1.6)
        m.jobs("s")
        assert len(calls) == 2                           # tried again after the pause
    finally:
        m.link, m._down_until = live, 0.0


def test_an_app_server_outlives_its_cluster_client(ray_cluster, tmp_path):
    """An app server reaches the queue through a client process (clusterlink.ProcessLink): Ray
    ends a driver whose cluster stopped answering, so it ends the client instead of the server.
    Here the client is killed: the server says the cluster does not answer, keeps the last list,
    and a new client takes over; refusals come in the caller's language."""
    from karp_models.i18n import using
    from karp_models.train.cluster import ClusterUnavailable
    from karp_models.train.clusterqueue import RayJobManager
    from karp_models.train.jobstatus import QueueFull

    m = RayJobManager(queue=f"link-{os.getpid()}-{time.monotonic_ns()}", timeout_s=30.0,
                      address=ray_cluster.address, connect_s=60, builder=builder,
                      runs_dir=tmp_path, set_threads=False, limit=1, max_active_per_session=1,
                      quota=ws.Quota(per_owner=0, total=0, reserve=0))
    try:
        client = m.link.process
        assert client.pid != os.getpid() and client.poll() is None
        maps = open(f"/proc/{client.pid}/maps").read()
        assert "libtorch" not in maps and "ray" in maps         # a small client: Ray, not torch
        first = m.submit("s", spec(steps=20))
        assert m.wait(first, 60).state == "done"
        blocker = m.submit("s", spec())
        with using("zh"), pytest.raises(QueueFull) as zh:     # the refusal, in the caller's language
            m.submit("s", spec())
        with using("en"), pytest.raises(QueueFull, match="you already have 1 run"):
            m.submit("s", spec())
        assert re.search(r"[\u4e00-\u9fff]", str(zh.value)), str(zh.value)
        m.stop(blocker, wait=True, timeout=30, owner="s")
        known = [j.job_id for j in m.jobs("s")]

        m.link.retry_s, m.fail_fast_s = 3600.0, 1.0             # no new client for now
        os.kill(client.pid, signal.SIGKILL)                     # as Ray ends it
        client.wait(10)
        with pytest.raises(ClusterUnavailable, match="does not answer"):
            m.submit("s", spec(steps=20))
        assert m.problem and [j.job_id for j in m.jobs("s")] == known   # the last known list
        m.heartbeat("s")                                        # never raises
        assert m.cluster_resources(max_age_s=0) is None

        m.link.retry_s = 0.0                                    # a new client, at the next call
        until(lambda: _answers(m), timeout=90, every=0.5)
        assert m.link.process.pid != client.pid and m.link.starts == 2
        assert [j.job_id for j in m.jobs("s")] == known and m.problem is None
        again = m.submit("s", spec(steps=20))
        assert m.wait(again, 60).state == "done"
        assert m.cluster_resources(max_age_s=0)["CPU"] == 2
    finally:
        m.close(timeout=10)
    assert m.link.process.poll() is not None                    # close ends the client


def _answers(m) -> bool:
    from karp_models.train.cluster import ClusterUnavailable

    try:
        m.jobs("s") and m.status(m.jobs("s")[0].job_id)
    except ClusterUnavailable:
        return False
    return m.problem is None


def test_an_unreachable_cluster_at_start_leaves_training_here_and_says_so(tmp_path):
    """A fresh process (ray not connected yet) with KARP_RAY_ADDRESS pointing at nothing."""
    code = ("from karp_models.train import jobs; import sys; "
            "jobs.JobManager.recover = lambda self: print('recovered', file=sys.stderr) or []; "
            "m = jobs.get_manager(); "
            "print(type(m).__name__); from karp_models.train import cluster; print(cluster.backend()[0]); print(cluster.backend()[1]); "
            "print('ray imported' if 'ray' in sys.modules else 'ray not imported')")
    env = {**os.environ, "KARP_RAY_ADDRESS": "127.0.0.1:9", "KARP_RAY_CONNECT_S": "3",
           "KARP_RUNS": str(tmp_path), "KARP_LANG": "en"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert lines[:2] == ["JobManager", "process"], out.stderr[-2000:]
    assert "could not be reached" in lines[2] and "127.0.0.1:9" in lines[2]
    assert "127.0.0.1:9 unreachable (" in out.stderr and "training runs in this process" in out.stderr
    assert "127.0.0.1:9" in lines[2] and "paused" not in out.stderr   # QA: it said both
    assert lines[3] == "ray not imported"   # the app server reaches a cluster through a client process
    assert "recovered" not in out.stderr    # the shared folder's interrupted runs wait for the cluster


def test_the_default_app_never_imports_ray(tmp_path):
    code = ("import sys; from karp_models.train import jobs; "
            "jobs.JobManager.recover = lambda self: print('recovered', file=sys.stderr) or []; "
            "m = jobs.get_manager(); "
            "from karp_models.train import cluster; print(type(m).__name__, cluster.backend(), 'ray' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "KARP_RAY_ADDRESS"}
    env["KARP_RUNS"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == ["JobManager", "('process',", "None)", "False"], out.stderr[-2000:]
    assert "recovered" in out.stderr                # a lone server takes up its interrupted runs


def test_a_stretch_sends_its_start_once_even_from_progress_zero():
    """QA: a fresh run's start (progress 0.0) was sent again with every report, so the queue reset
    the clock its time estimate counts from, and the estimate stayed near 10 s all run long."""
    from karp_models.train.cluster import _Relay
    from karp_models.train.jobstatus import Job

    job = Job(job_id="j", session_id="s", spec=None, device_key="cpu", label="#1", created=0.0)
    relay = _Relay(job, queue=None, token="t")
    job.t_run, job.p_run = time.monotonic(), 0.0
    with relay:
        first, second = relay.delta(), relay.delta()
    assert first["running"] == 0.0 and "running" not in second
