"""A classroom at once (issue 9): N simultaneous browser sessions against one karp server.

Starts its own `streamlit run app.py` (headless, 127.0.0.1 only, port 8607 unless KARP_LOAD_PORT),
then drives N Playwright browser contexts (one Chromium, Debian's, via executable_path): each
opens the app, goes to Predict and predicts twice, goes to Explain and explains; the first
`trainers` of them go on to Train and start a short run. Sessions start a fraction of a second
apart, like a class arriving. Bounded: at most 40 sessions, a wall-clock budget, loopback only.

    python bench/bench_load.py              # 30 sessions, 5 of them training
    KARP_LOAD_SESSIONS=5 python bench/bench_load.py

Figures: errors (exception boxes on a page, actions that fail or time out; goal 0), p50 / p95
prediction and explanation latency (click to answer drawn; goal p95 < 2 s on a 2-core CPU), the
training queue (most runs seen running at once, held for two samples a second apart, against the
job limit), and the server's peak resident memory (goal < 3 GB). The browsers run on the same
machine as the server, so on 2 cores they compete with it for the CPU: the latencies are an
upper bound of what 30 students on their own laptops would see.

The page actions are tests/e2e/actions.py (shared with the browser suite).
"""
from __future__ import annotations

import asyncio
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

MAX_SESSIONS = 40
PORT = int(os.environ.get("KARP_LOAD_PORT", "8607"))


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


async def classroom(base: str, pid: int, n: int, trainers: int, budget_s: float,
                    limit: int) -> dict:
    from playwright.async_api import async_playwright

    res = {"errors": [], "predict": [], "explain": [], "predict_answer": [],
           "explain_answer": [], "rss": [], "states": {}, "max_running": 0,
           "queued_seen": 0, "done": 0, "sessions_finished": 0}
    stop = asyncio.Event()

    async def monitor():
        over = 0
        while not stop.is_set():
            res["rss"].append(act.rss_bytes(pid))
            running = sum(s == "running" for s in res["states"].values())
            queued = sum(s == "queued" for s in res["states"].values())
            res["queued_seen"] = max(res["queued_seen"], queued)
            over = over + 1 if running > limit else 0  # a page's state can lag by a second
            res["max_running"] = max(res["max_running"], running if over >= 2 or running <= limit
                                     else limit)
            await asyncio.sleep(1.0)

    async def student(i: int, browser):
        await asyncio.sleep(i * 0.5)  # the class arrives over a few seconds
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await ctx.new_page()
        step = "open"
        try:
            await act.open_app(page, base, timeout_s=120)
            step = "predict"
            await act.go(page, "Predict and look inside", timeout_s=120)
            for _ in range(2):
                t = await act.predict(page, timeout_s=120)
                res["predict"].append(t.drawn)
                if t.answered is not None:
                    res["predict_answer"].append(t.answered)
            await check(page, i, step)
            step = "explain"
            await act.go(page, "Explain", timeout_s=120)
            t = await act.explain(page, timeout_s=180)
            res["explain"].append(t.drawn)
            if t.answered is not None:
                res["explain_answer"].append(t.answered)
            await check(page, i, step)
            if i < trainers:
                step = "train"
                await act.go(page, "Train", timeout_s=120)
                await act.start_training(page, dataset="digits", steps=30, timeout_s=120)
                while not stop.is_set():
                    s = await act.training_state(page)
                    res["states"][i] = s
                    if s in ("done", "failed", "stopped"):
                        res["done"] += s == "done"
                        if s == "failed":
                            res["errors"].append(f"session {i}: the training run failed")
                        break
                    await asyncio.sleep(1.0)
                await check(page, i, step)
            res["sessions_finished"] += 1
        except Exception as e:  # noqa: BLE001 - every failure is a counted, reported error
            res["errors"].append(f"session {i} at {step}: {type(e).__name__}: {str(e)[:200]}")
        finally:
            res["states"].pop(i, None)
            await ctx.close()

    async def check(page, i, step):
        for text in await act.exceptions(page):
            res["errors"].append(f"session {i} at {step}: exception on the page: {text[:200]}")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=act.CHROMIUM, args=act.CHROMIUM_ARGS)
        mon = asyncio.create_task(monitor())
        tasks = [asyncio.create_task(student(i, browser)) for i in range(n)]
        done, pending = await asyncio.wait(tasks, timeout=budget_s)
        stop.set()
        for t in pending:
            t.cancel()
        if pending:
            res["errors"].append(f"{len(pending)} session(s) still busy after the {budget_s:.0f} s "
                                 f"budget")
            await asyncio.gather(*pending, return_exceptions=True)
        await mon
        await browser.close()
    return res


def measure(n: int = 30, trainers: int = 5, budget_s: float = 600.0, limit: int = 1) -> dict:
    """Start the server, run the class, stop the server; the raw figures."""
    n = max(1, min(int(n), MAX_SESSIONS))
    trainers = max(0, min(int(trainers), n))
    runs = tempfile.mkdtemp(prefix="karp-load-runs-")
    log = Path(runs) / "jobs.log"
    env = {"KARP_RUNS": runs, "KARP_JOBS_LOG": str(log), "KARP_JOB_LIMIT": str(limit), "KARP_JOB_GRACE": "10",
           "KARP_THREADS": os.environ.get("KARP_THREADS", "1"),
           "KARP_TEACHER_PASSWORD": None}  # students train without asking the teacher here
    proc = act.start_server(PORT, env)
    base = f"http://127.0.0.1:{PORT}"
    t0 = time.perf_counter()
    try:
        res = asyncio.run(classroom(base, proc.pid, n, trainers, budget_s, limit))
    finally:
        res_rss_end = act.rss_bytes(proc.pid)
        act.stop_server(proc)
    res.update(n=n, trainers=trainers, limit=limit, wall_s=time.perf_counter() - t0,
               rss_end=res_rss_end, **server_jobs(log))
    return res


def server_jobs(log: Path) -> dict:
    """From the server's job log (KARP_JOBS_LOG): most jobs running at once on a device, most
    waiting, and how many started and finished. The pages' own states can lag under load."""
    most_running = most_queued = started = ended = 0
    if log.exists():
        for row in log.read_text().split("\n"):
            parts = row.split()
            if len(parts) != 6:
                continue
            _, event, _, _, running, queued = parts
            most_running = max(most_running, int(running))
            most_queued = max(most_queued, int(queued))
            started += event == "start"
            ended += event in ("done", "stopped", "error")
    return {"server_most_running": most_running, "server_most_queued": most_queued,
            "server_started": started, "server_ended": ended}


def report(line, res: dict) -> None:
    n = res["n"]
    line("classroom_sessions", n, "browser sessions",
         f"{res['trainers']} training; {res['sessions_finished']} finished; "
         f"{res['wall_s']:.0f} s wall; browsers on the same 2-core machine as the server")
    line("classroom_errors", len(res["errors"]), "errors", "goal 0")
    p, e = res["predict"], res["explain"]
    pa, ea = res["predict_answer"], res["explain_answer"]
    line("classroom_predict_p50", pct(p, 50), "s", f"click to drawn; {len(p)} predictions; "
         f"answer received p50 {pct(pa, 50):.2f} s")
    line("classroom_predict_p95", pct(p, 95), "s", f"goal < 2 s; answer received p95 "
         f"{pct(pa, 95):.2f} s (leaves out the browser's drawing)")
    line("classroom_explain_p50", pct(e, 50), "s", f"{len(e)} explanations; answer received "
         f"p50 {pct(ea, 50):.2f} s")
    line("classroom_explain_p95", pct(e, 95), "s", f"answer received p95 {pct(ea, 95):.2f} s")
    line("classroom_training_most_running", res["server_most_running"], "jobs",
         f"goal <= job limit {res['limit']}; server's job log: up to "
         f"{res['server_most_queued']} waiting, {res['server_started']} started, "
         f"{res['server_ended']} ended; as the pages showed it: {res['max_running']} running, "
         f"{res['queued_seen']} queued, {res['done']} of {res['trainers']} done")
    peak = max(res["rss"] or [0])
    line("classroom_server_rss_peak", peak / 2**30, "GB",
         f"goal < 3 GB; {res['rss_end'] / 2**30:.2f} GB at the end")


def run(line) -> None:
    """bench/run.py's entry: KARP_LOAD_SESSIONS (default 30) sessions, 5 of them training."""
    res = measure(int(os.environ.get("KARP_LOAD_SESSIONS", "30")),
                  int(os.environ.get("KARP_LOAD_TRAINERS", "5")),
                  float(os.environ.get("KARP_LOAD_BUDGET_S", "600")))
    report(line, res)
    for err in res["errors"][:10]:
        print(f"#   {err}")


if __name__ == "__main__":
    from run import line

    try:
        run(line)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
