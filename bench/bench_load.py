"""A classroom at once (issue 9): N simultaneous sessions against one karp server.

Starts its own `streamlit run app.py` (headless, 127.0.0.1 only, port 8607 unless
KARP_LOAD_PORT), then drives N sessions at it. Bounded: at most 80 sessions, a wall-clock budget,
loopback only.

Default, browserless (measures the server): each student is a real Streamlit session over the
websocket (bench/stream_client.py sends the BackMsg rerun_script messages the browser's frontend
sends and reads the ForwardMsg deltas back), so the 2 cores serve the class instead of running 30
Chromium renderers, as in a real classroom where every student has a laptop. Each session opens
Home, then Predict (switches the input to a test image, then types another image number: two
predictions), then Explain (the page explains the image from Predict with every attribution
method by default; then another test image: two explanations); the first `trainers` go on to
Train and start a short digits run (KARP_LOAD_STEPS steps, default 100), whose live view they
keep polling, as the page's fragment does, until it is done. Students arrive 0.5 s apart.

    python bench/bench_load.py                        # 30 sessions, 5 of them training
    KARP_LOAD_SESSIONS=60 KARP_LOAD_TRAINERS=10 python bench/bench_load.py   # issue 25's lab
    KARP_LOAD_SESSIONS=3 KARP_LOAD_TRAINERS=1 python bench/bench_load.py
    python bench/bench_load.py --browser              # Playwright pages (Debian's Chromium)

Figures: errors (exception boxes, disconnects, timeouts, a missing answer, a failed run; goal 0),
p50 / p95 latency per action from sending the rerun to the server's script_finished (prediction
goal p95 < 2 s on a 2-core CPU), the training queue from the server's job log (KARP_JOBS_LOG:
most runs at once against the job limit), the server's peak resident memory (goal < 3 GB), and
how busy the machine was while measuring (server CPU, load average, the client's own CPU).

--browser (KARP_LOAD_MODE=browser): N Playwright contexts in one Chromium through the page
actions of tests/e2e/actions.py; on one 2-core machine the renderers compete with the server, so
its latencies are an upper bound of what students on their own laptops would see.
"""
from __future__ import annotations

import asyncio
import os
import random
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

MAX_SESSIONS = 80       # a school's lab (issue 25: 60 sessions) with room to spare
PORT = int(os.environ.get("KARP_LOAD_PORT", "8607"))
ARRIVAL_S = 0.5          # one student every half second
PREDICT_ACTIONS = ("predict_test_image", "predict_other_image")
EXPLAIN_ACTIONS = ("explain_open", "explain_choose_test", "explain_other_image")


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


# --- how busy the machine is (Linux /proc)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


# --- browserless: real Streamlit sessions over the websocket


async def _within_budget(tasks: list, budget_s: float, stop: asyncio.Event, res: dict) -> None:
    """Wait for the sessions up to the time budget; then stop the monitors, cancel the rest and
    count them as errors."""
    _, pending = await asyncio.wait(tasks, timeout=budget_s)
    stop.set()
    for t in pending:
        t.cancel()
    if pending:
        res["errors"].append(f"{len(pending)} session(s) still busy after the {budget_s:.0f} s "
                             f"budget")
        await asyncio.gather(*pending, return_exceptions=True)


async def teacher(port: int, res: dict) -> None:
    """Before the class: the teacher opens Home, Predict and Explain once (on the projector), so
    the server has imported torch and loaded the default model and dataset. Timed apart."""
    from stream_client import StreamSession

    s = StreamSession(port)
    t0 = time.perf_counter()
    try:
        await s.connect()
        await s.rerun(timeout_s=180)
        await s.rerun("predict", timeout_s=180)
        s.choose("Image from", "Test image")
        await s.rerun(timeout_s=180)
        r = await s.rerun("explain", timeout_s=180)
        for e in r.exceptions:
            res["errors"].append(f"teacher at Explain: exception on the page: {e}")
    except Exception as e:  # noqa: BLE001
        res["errors"].append(f"teacher's warm-up: {type(e).__name__}: {str(e)[:200]}")
    finally:
        res["warmup_s"] = time.perf_counter() - t0
        await s.close()


async def classroom_stream(port: int | list[int], pid: int | list[int], n: int, trainers: int,
                           budget_s: float, steps: int, warmup: bool = True,
                           explain: bool = True) -> dict:
    """The class over the websocket. Several servers (lists of ports and pids: one queue behind
    them, bench_cluster_load.py): student i uses server i mod their number, as a sticky load
    balancer would. explain=False: students skip the Explain page."""
    from stream_client import SessionError, StreamSession

    ports = port if isinstance(port, list) else [port]
    pids = pid if isinstance(pid, list) else [pid]

    res = {"errors": [], "lat": {}, "rss": [], "load": [], "sessions_finished": 0,
           "train_states": {}, "ref_hashes": 0}
    stop = asyncio.Event()
    all_done = asyncio.Event()
    finished = 0

    def lat(action: str, seconds: float) -> None:
        res["lat"].setdefault(action, []).append(seconds)

    async def monitor():
        while not stop.is_set():
            res["rss"].append(sum(act.rss_bytes(p) for p in pids))
            res["load"].append(os.getloadavg()[0])
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass

    async def student(i: int) -> None:
        nonlocal finished
        rng = random.Random(1000 + i)
        await asyncio.sleep(i * ARRIVAL_S)
        s = StreamSession(ports[i % len(ports)])
        step = "connect"

        async def do(action: str, page: str | None = None, trigger: str | None = None,
                     fragment: str = "", timeout_s: float = 120):
            r = await s.rerun(page, trigger=trigger, fragment_id=fragment, timeout_s=timeout_s)
            lat(action, r.seconds)
            for e in r.exceptions:
                res["errors"].append(f"session {i} at {action}: exception on the page: {e}")
            return r

        try:
            await s.connect()
            step = "home"
            await do("home")
            step = "predict"
            await do("open_predict", "predict")
            s.choose("Image from", "Test image")
            r = await do("predict_test_image")
            s.number("Test image (0 to", rng.randrange(10_000))
            r = await do("predict_other_image")
            if not any(t.startswith("### ") and t.endswith("%") for t in r.texts):
                res["errors"].append(f"session {i}: no prediction on the Predict page")
            if explain:
                step = "explain"
                r = await do("explain_open", "explain")  # the default explanation of that image
                s.choose("Image to explain", "A test image")
                await do("explain_choose_test")
                k = rng.randrange(10_000)
                s.number("Test image number", k)
                r = await do("explain_other_image")
                if not any(f"test image #{k}" in t for t in r.texts):
                    res["errors"].append(f"session {i}: Explain did not show test image #{k}")
            if i < trainers:
                step = "train"
                await do("open_train", "train")
                s.choose("Dataset", "digits")
                s.number("Steps", steps)
                await do("train_settings")
                r = await do("train_start", trigger="Start training")
                state = ""
                while not stop.is_set():
                    for t in r.texts:
                        low = t.lower()
                        for st_ in ("queued", "running", "stopped", "done", "failed"):
                            if st_ in low and "·" in low:
                                state = st_
                    res["train_states"][i] = state
                    if state in ("done", "failed", "stopped") or not s.fragments:
                        break
                    fid, every = next(iter(s.fragments.items()))
                    await asyncio.sleep(every)
                    r = await do("train_live_view", fragment=fid)
                if state != "done":
                    res["errors"].append(f"session {i}: the training run ended {state or 'unseen'}")
            res["sessions_finished"] += 1
            finished += 1
            if finished == n:
                all_done.set()
            await all_done.wait()   # stay connected, as an open tab, until the class is done
        except SessionError as e:
            res["errors"].append(f"session {i} at {step}: {e}")
        except Exception as e:  # noqa: BLE001 - every failure is a counted, reported error
            res["errors"].append(f"session {i} at {step}: {type(e).__name__}: {str(e)[:200]}")
        finally:
            res["ref_hashes"] += s.ref_hashes
            await s.close()

    async def watchdog():
        # sessions that failed never reach all_done: release the others once all have returned
        while not stop.is_set():
            if sum(t.done() for t in tasks) + finished >= n and finished < n:
                all_done.set()
            await asyncio.sleep(0.5)

    mon = asyncio.create_task(monitor())
    if warmup:
        for p in ports:
            await teacher(p, res)
    # the class's own share of the machine starts here (after the teacher's visit)
    res["class_start"] = (time.perf_counter(), sum(cpu_seconds(p) for p in pids), machine_busy(),
                          time.process_time())
    tasks = [asyncio.create_task(student(i)) for i in range(n)]
    wd = asyncio.create_task(watchdog())
    await _within_budget(tasks, budget_s, stop, res)
    all_done.set()
    await asyncio.gather(mon, wd)
    return res


# --- with browsers (Playwright): the page actions of tests/e2e/actions.py


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
            res.setdefault("load", []).append(os.getloadavg()[0])
            running = sum(s == "running" for s in res["states"].values())
            queued = sum(s == "queued" for s in res["states"].values())
            res["queued_seen"] = max(res["queued_seen"], queued)
            over = over + 1 if running > limit else 0  # a page's state can lag by a second
            res["max_running"] = max(res["max_running"], running if over >= 2 or running <= limit
                                     else limit)
            await asyncio.sleep(1.0)

    async def student(i: int, browser):
        await asyncio.sleep(i * 0.5)  # the class arrives over a few seconds
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, locale=act.LOCALE)
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
        await _within_budget(tasks, budget_s, stop, res)
        await mon
        await browser.close()
    return res


def class_size(n: int, trainers: int) -> tuple[int, int]:
    """(sessions, trainers) as run: 1 to MAX_SESSIONS sessions, 0 to that many of them training."""
    n = max(1, min(int(n), MAX_SESSIONS))
    return n, max(0, min(int(trainers), n))


def measure(n: int = 30, trainers: int = 5, budget_s: float = 600.0, limit: int = 1,
            mode: str = "stream", steps: int = 100, warmup: bool = True, port: int = PORT) -> dict:
    """Start the server, run the class, stop the server; the raw figures."""
    n, trainers = class_size(n, trainers)
    runs = tempfile.mkdtemp(prefix="karp-load-runs-")
    log = Path(runs) / "jobs.log"
    env = {"KARP_RUNS": runs, "KARP_JOBS_LOG": str(log), "KARP_JOB_LIMIT": str(limit), "KARP_JOB_GRACE": "10",
           "KARP_THREADS": os.environ.get("KARP_THREADS", "1"),
           "KARP_TEACHER_PASSWORD": None}  # students train without asking the teacher here
    proc = act.start_server(port, env)
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    cpu0, busy0, me0 = cpu_seconds(proc.pid), machine_busy(), time.process_time()
    try:
        if mode == "browser":
            res = asyncio.run(classroom(base, proc.pid, n, trainers, budget_s, limit))
            res["lat"] = {"predict": res["predict"], "explain": res["explain"]}
        else:
            res = asyncio.run(classroom_stream(port, proc.pid, n, trainers, budget_s, steps, warmup))
    finally:
        t_end = time.perf_counter()
        wall = t_end - t0
        cpu1, busy1, me1 = cpu_seconds(proc.pid), machine_busy(), time.process_time()
        res_rss_end = act.rss_bytes(proc.pid)
        act.stop_server(proc)
    cores = os.cpu_count() or 1
    if "class_start" in res:   # count from the students' arrival, not the teacher's warm-up
        t_c, cpu0, busy0, me0 = res["class_start"]
        wall = t_end - t_c
    res.update(n=n, trainers=trainers, limit=limit, wall_s=wall, mode=mode, steps=steps,
               rss_end=res_rss_end, server_cpu_s=cpu1 - cpu0, client_cpu_s=me1 - me0,
               machine_busy=(busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), cores=cores,
               **server_jobs(log))
    return res


def server_jobs(log: Path) -> dict:
    """From the server's job log (KARP_JOBS_LOG): most jobs running at once on a device, most
    waiting, and how many started and finished. The pages' own states can lag under load."""
    most_running = most_queued = started = ended = 0
    if log.exists():
        for row in log.read_text().split("\n"):
            parts = row.split()
            if len(parts) not in (6, 7):   # a 7th: where it ran, on a cluster
                continue
            _, event, _, _, running, queued = parts[:6]
            most_running = max(most_running, int(running))
            most_queued = max(most_queued, int(queued))
            started += event == "start"
            ended += event in ("done", "stopped", "error")
    return {"server_most_running": most_running, "server_most_queued": most_queued,
            "server_started": started, "server_ended": ended}


def report(line, res: dict) -> None:
    n, wall = res["n"], res["wall_s"]
    if res["mode"] == "browser":
        report_browser(line, res)
        return report_cpu(line, res)
    line("classroom_sessions", n, "websocket sessions",
         f"{res['trainers']} training {res['steps']} digits steps; {res['sessions_finished']} "
         f"finished; {wall:.0f} s wall; browserless (no Chromium on the server's cores); "
         + (f"the teacher's warm-up visit first: {res['warmup_s']:.1f} s" if "warmup_s" in res
            else "cold server"))
    line("classroom_errors", len(res["errors"]), "errors", "goal 0")
    lat = res["lat"]
    pred = [t for a in PREDICT_ACTIONS for t in lat.get(a, [])]
    expl = [t for a in EXPLAIN_ACTIONS for t in lat.get(a, [])]
    line("classroom_predict_p50", pct(pred, 50), "s", f"rerun sent to script_finished; "
         f"{len(pred)} predictions")
    line("classroom_predict_p95", pct(pred, 95), "s", "goal < 2 s")
    line("classroom_explain_p50", pct(expl, 50), "s", f"{len(expl)} explanations: Explain "
         f"opened on the image from Predict, then test image 0, then a random one; all 8 "
         f"attribution methods; the adversarial attack runs only when switched on")
    line("classroom_explain_p95", pct(expl, 95), "s", "")
    for a in ("home", "open_predict", *PREDICT_ACTIONS, "explain_open", "explain_choose_test",
              "explain_other_image", "open_train", "train_settings", "train_start",
              "train_live_view"):
        xs = lat.get(a, [])
        if xs:
            line(f"classroom_{a}_p95", pct(xs, 95), "s",
                 f"p50 {pct(xs, 50):.2f} s, max {max(xs):.2f} s, {len(xs)} reruns")
    report_server(line, res, f"ended of {res['trainers']} asked")
    report_cpu(line, res)


def report_server(line, res: dict, jobs_tail: str) -> None:
    """The job-limit and server-memory lines of both modes; jobs_tail ends the job-log note."""
    line("classroom_training_most_running", res["server_most_running"], "jobs",
         f"goal <= job limit {res['limit']}; server's job log: up to "
         f"{res['server_most_queued']} waiting, {res['server_started']} started, "
         f"{res['server_ended']} {jobs_tail}")
    peak = max(res["rss"] or [0])
    line("classroom_server_rss_peak", peak / 2**30, "GB",
         f"goal < 3 GB; {res['rss_end'] / 2**30:.2f} GB at the end")


def report_cpu(line, res: dict) -> None:
    wall, load = res["wall_s"], res.get("load", [])
    line("classroom_server_cpu", res["server_cpu_s"] / wall, "cores",
         f"server CPU {res['server_cpu_s']:.0f} s over {wall:.0f} s; machine "
         f"{res['machine_busy']:.0%} busy of {res['cores']} cores; load average "
         f"{pct(load, 50):.1f} median, {max(load or [0]):.1f} max; the load client itself "
         f"{res['client_cpu_s']:.0f} CPU s")


def report_browser(line, res: dict) -> None:
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
    report_server(line, res, f"ended; as the pages showed it: {res['max_running']} running, "
                             f"{res['queued_seen']} queued, {res['done']} of {res['trainers']} done")




def run(line) -> None:
    """bench/run.py's entry: KARP_LOAD_SESSIONS (default 30) sessions, KARP_LOAD_TRAINERS (5)
    of them training; KARP_LOAD_MODE=browser for Playwright pages."""
    mode = os.environ.get("KARP_LOAD_MODE", "stream")
    if "--browser" in sys.argv[1:]:
        mode = "browser"
    res = measure(int(os.environ.get("KARP_LOAD_SESSIONS", "30")),
                  int(os.environ.get("KARP_LOAD_TRAINERS", "5")),
                  float(os.environ.get("KARP_LOAD_BUDGET_S", "600")),
                  mode=mode, steps=int(os.environ.get("KARP_LOAD_STEPS", "100")),
                  warmup=os.environ.get("KARP_LOAD_WARMUP", "1") != "0")
    report(line, res)
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
