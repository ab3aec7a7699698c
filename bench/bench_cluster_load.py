"""Two app servers, one queue (issue 26): N sessions split between two karp servers that share a
Ray cluster's job queue, some of them training.

Starts a local Ray cluster in this process (a head node with no CPUs, which holds the queue actor,
and one worker node with KARP_LOAD_RAY_CPUS CPUs, default 2, CPU only, small object stores), a
shared runs folder, and two `streamlit run app.py` servers (ports 8613 and 8614 unless
KARP_LOAD_PORTS) with KARP_RAY_ADDRESS set to it; then drives the class of bench_load.py over the
websocket (bench/stream_client.py): student i talks to server i mod 2 (a sticky load balancer),
opens Home and Predict (two predictions; Explain with KARP_LOAD_EXPLAIN=1), and the first
`trainers` start a short digits run on Train and poll its live view until it is done. The job
limit is the cluster's CPUs (one CPU per job).

    python bench/bench_cluster_load.py          # 60 sessions, 10 training, 60 steps each
    KARP_LOAD_SESSIONS=4 KARP_LOAD_TRAINERS=2 python bench/bench_cluster_load.py

Figures: errors (goal 0), p50 / p95 latency per action, most jobs running at once against the
limit (the queue's job log), where each job ran (node and process, from the job log), both
servers' peak memory, and how busy the machine was.
"""
from __future__ import annotations

import asyncio
import collections
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import actions as act  # noqa: E402
import bench_load as bl  # noqa: E402

MAX_SESSIONS = 60
PORTS = [int(p) for p in os.environ.get("KARP_LOAD_PORTS", "8613,8614").split(",")]


def where_jobs(log: Path) -> dict[str, str]:
    """job id -> where it last ran ('host_(ip)_pid_N'), from the queue's job log."""
    out = {}
    if log.exists():
        for row in log.read_text().splitlines():
            parts = row.split()
            if len(parts) == 7:
                out[parts[2]] = parts[6]
    return out


def poll_cost(address: str, repeat: int = 30) -> dict:
    """What a page's poll costs on the cluster: milliseconds of one jobs() over the class's
    finished runs (all owners, as the teacher's list asks) and of one status(), median of
    `repeat`, from this process as a third app server would ask; and how many runs and records."""
    import statistics

    from karp_models.train import cluster

    cluster.connect(address, timeout_s=60)
    m = cluster.RayJobManager(queue="main", timeout_s=30.0)
    every = m.jobs()
    out = {"runs": len(every), "records": sum(len(j.records) for j in every)}
    for name, fn in (("jobs_ms", m.jobs), ("status_ms", lambda: m.status(every[0].job_id))):
        ts = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            ts.append(1000 * (time.perf_counter() - t))
        out[name] = statistics.median(ts)
    return out


def measure(n: int = 60, trainers: int = 10, budget_s: float = 1500.0, steps: int = 60,
            cpus: int = 2, explain: bool = False) -> dict:
    from ray.cluster_utils import Cluster

    n = max(1, min(int(n), MAX_SESSIONS))
    trainers = max(0, min(int(trainers), n))
    runs = tempfile.mkdtemp(prefix="karp-cluster-load-runs-")
    log = Path(runs) / "jobs.log"
    mem = 100 * 1024 ** 2
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": mem, "include_dashboard": False})
    cluster.add_node(num_cpus=cpus, object_store_memory=mem)
    env = {"KARP_RAY_ADDRESS": cluster.address, "KARP_RUNS": runs, "KARP_JOBS_LOG": str(log),
           "KARP_JOB_LIMIT": None, "KARP_JOB_GRACE": "30",
           "KARP_THREADS": os.environ.get("KARP_THREADS", "1"), "KARP_TEACHER_PASSWORD": None}
    procs = []
    t0 = time.perf_counter()
    try:
        for port in PORTS:
            procs.append(act.start_server(port, env, timeout_s=180))
        pids = [p.pid for p in procs]
        t0 = time.perf_counter()
        cpu0, busy0, me0 = sum(bl.cpu_seconds(p) for p in pids), bl.machine_busy(), time.process_time()
        res = asyncio.run(bl.classroom_stream(PORTS, pids, n, trainers, budget_s, steps,
                                              warmup=True, explain=explain))
        t_end = time.perf_counter()
        cpu1, busy1, me1 = sum(bl.cpu_seconds(p) for p in pids), bl.machine_busy(), time.process_time()
        rss_end = sum(act.rss_bytes(p) for p in pids)
        poll = poll_cost(cluster.address)
    finally:
        for p in procs:
            act.stop_server(p)
        if "ray" in sys.modules:  # poll_cost connected this process: leave before the cluster goes
            sys.modules["ray"].shutdown()
        cluster.shutdown()
    wall = t_end - t0
    if "class_start" in res:
        t_c, cpu0, busy0, me0 = res["class_start"]
        wall = t_end - t_c
    res.update(n=n, trainers=trainers, limit=cpus, wall_s=wall, mode="stream", steps=steps,
               rss_end=rss_end, server_cpu_s=cpu1 - cpu0, client_cpu_s=me1 - me0,
               machine_busy=(busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
               cores=os.cpu_count() or 1, where=where_jobs(log), explain=explain, poll=poll,
               **bl.server_jobs(log))
    return res


def report(line, res: dict) -> None:
    n, wall = res["n"], res["wall_s"]
    line("cluster_sessions", n, "websocket sessions",
         f"split over {len(PORTS)} app servers sharing one Ray queue; {res['trainers']} training "
         f"{res['steps']} digits steps; {res['sessions_finished']} finished; {wall:.0f} s wall; "
         f"Home, Predict (2 predictions){', Explain' if res['explain'] else ''}, then Train")
    line("cluster_errors", len(res["errors"]), "errors", "goal 0")
    lat = res["lat"]
    pred = [t for a in bl.PREDICT_ACTIONS for t in lat.get(a, [])]
    line("cluster_predict_p50", bl.pct(pred, 50), "s", f"{len(pred)} predictions")
    line("cluster_predict_p95", bl.pct(pred, 95), "s", "")
    for a in ("home", "open_predict", *bl.PREDICT_ACTIONS, "open_train", "train_settings",
              "train_start", "train_live_view"):
        xs = lat.get(a, [])
        if xs:
            line(f"cluster_{a}_p95", bl.pct(xs, 95), "s",
                 f"p50 {bl.pct(xs, 50):.2f} s, max {max(xs):.2f} s, {len(xs)} reruns")
    line("cluster_training_most_running", res["server_most_running"], "jobs",
         f"goal <= job limit {res['limit']} (the worker node's CPUs); the queue's log: up to "
         f"{res['server_most_queued']} waiting, {res['server_started']} started, "
         f"{res['server_ended']} ended of {res['trainers']} asked")
    places = collections.Counter(res["where"].values())
    line("cluster_jobs_placed", len(res["where"]), "jobs",
         "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(places.items())) or "none")
    poll = res["poll"]
    line("cluster_poll_jobs", poll["jobs_ms"], "ms", f"one jobs() over all {poll['runs']} runs "
         f"({poll['records']} records) from a third process, median; status() of one run "
         f"{poll['status_ms']:.1f} ms")
    peak = max(res["rss"] or [0])
    line("cluster_servers_rss_peak", peak / 2**30, "GB",
         f"both app servers together; {res['rss_end'] / 2**30:.2f} GB at the end")
    bl.report_cpu(line, res)


def run(line) -> None:
    """bench/run.py's entry: KARP_LOAD_SESSIONS (60), KARP_LOAD_TRAINERS (10), KARP_LOAD_STEPS
    (60), KARP_LOAD_RAY_CPUS (2), KARP_LOAD_EXPLAIN (0)."""
    env = os.environ.get
    res = measure(int(env("KARP_LOAD_SESSIONS", "60")), int(env("KARP_LOAD_TRAINERS", "10")),
                  float(env("KARP_LOAD_BUDGET_S", "1500")), int(env("KARP_LOAD_STEPS", "60")),
                  int(env("KARP_LOAD_RAY_CPUS", "2")), env("KARP_LOAD_EXPLAIN", "0") == "1")
    report(line, res)
    for job, where in sorted(res["where"].items()):
        print(f"#   job {job} ran on {where.replace('_', ' ')}")
    for err in res["errors"][:10]:
        print(f"#   {err}")
    if len(res["errors"]) > 10:
        print(f"#   ... and {len(res['errors']) - 10} more")


if __name__ == "__main__":
    from run import line

    try:
        run(line)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
