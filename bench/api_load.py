"""HTTP scenarios against a fresh ``songqueue serve``: submissions, claims, polls, memory.

Each scenario starts its own API process on a free loopback port with a temporary home, drives
it with ``bench/loadgen.py`` in a separate process (so the client's CPU is not the server's),
stops everything it started, and prints one JSON line.

    python bench/api_load.py submit [--seconds 8] [--warmup 2] [--clients 16] [--profile]
    python bench/api_load.py polls  [--jobs 1000]
    python bench/api_load.py memory [--requests 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    cpu_seconds,
    emit,
    free_port,
    load_average,
    memory_mib,
    process_env,
    songqueue,
    stop,
    wait_http,
)
from service.store.migrate import upgrade

BODY = {"caption": "lofi hip hop with piano", "audio_duration": 10, "batch_size": 1}
CLAIM_START_DELAY = 3.0  # seconds: the claimer's imports and connect happen before this
PYSPY_RATE = 200  # samples per second
PROFILE_TOP = 15  # frames listed per profile table


@contextmanager
def api(tmp: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    """A fresh ``songqueue serve`` on a migrated temporary database; stopped on exit."""
    home = tmp / "home"
    url = f"sqlite+aiosqlite:///{home / 'songqueue.db'}"
    upgrade(url)
    port = free_port()
    environment = process_env(home, SONGQUEUE_QUEUE_MAXSIZE="1000000000", **env)
    proc = songqueue(["serve", "--port", str(port)], environment, tmp / "api.log")
    try:
        wait_http(f"http://127.0.0.1:{port}")
        yield proc, port, url
    finally:
        stop(proc)


def write_plan(tmp: Path, rows: list[list[object]]) -> Path:
    path = Path(tempfile.mkstemp(suffix=".jsonl", dir=tmp)[1])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def loadgen(port: int, plan: Path, args: argparse.Namespace, **over: object) -> dict:
    """Run bench/loadgen.py as a separate process and return its JSON line."""
    opts = {"clients": args.clients, "seconds": args.seconds, "warmup": args.warmup,
            "requests": 0, "tool": args.tool} | over  # fmt: skip
    cmd = [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--port", str(port),
           "--plan", str(plan)] + [f"--{k}={v}" for k, v in opts.items()]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def served(pid: int, port: int, plan: Path, args: argparse.Namespace, **over: object) -> dict:
    """Loadgen figures plus the server's CPU per request over the whole run."""
    cpu0 = cpu_seconds(pid)
    result = loadgen(port, plan, args, **over)
    cpu = cpu_seconds(pid) - cpu0
    total = result["requests"] * (1 + over.get("warmup", args.warmup) / max(result["seconds"], 1))
    result["server_cpu_ms_per_req"] = round(1000 * cpu / max(total, 1), 3)
    return result


def submit_path(port: int) -> str:
    """``/release_task`` when this build has it, else ``/v1/music/generate``."""
    r = httpx.post(f"http://127.0.0.1:{port}/release_task", json=BODY, timeout=30)
    return "/release_task" if r.status_code != 404 else "/v1/music/generate"


def claimer(url: str, start_at: float, **opts: object) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(ROOT / "bench" / "claimer.py"), "--url", url,
           f"--start-at={start_at}"] + [f"--{k}={v}" for k, v in opts.items()]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def claimer_result(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"claimer failed: {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def ceiling(tmp: Path, args: argparse.Namespace, rows: list[list[object]]) -> dict:
    """The bare Starlette endpoint under the same load (the same plan of requests)."""
    port = free_port()
    log = (tmp / "ceiling.log").open("wb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ceiling.py"), "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}")
        return served(proc.pid, port, write_plan(tmp, rows), args)
    finally:
        stop(proc)


def _idle_line() -> str:
    """The frame of an aiosqlite thread blocked in ``tx.get()``: waiting for work, not working."""
    import inspect

    import aiosqlite.core

    lines, first = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)
    offset = next((i for i, x in enumerate(lines) if "tx.get(" in x), 0)
    return f"_connection_worker_thread (aiosqlite/core.py:{first + offset})"


def summarize_profile(raw: Path, seconds: float, rate: int) -> dict:
    """Top frames by self and inclusive samples, in % of one CPU over the window.

    Line numbers are dropped (a function is one row). Samples of aiosqlite threads blocked in
    ``tx.get()`` are counted apart as idle. ``main`` is the event loop thread.
    """
    idle_leaf = _idle_line()
    self_count: Counter[str] = Counter()
    incl_count: Counter[str] = Counter()
    by_library: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1] == idle_leaf:
            threads["aiosqlite threads, idle"] += n
            continue
        threads["main (event loop)" if "cmd_serve" in stack else "other threads (busy)"] += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in frames]
        self_count[frames[-1]] += n
        for frame in set(frames):
            incl_count[frame] += n
        by_library[library_of(frames[-1])] += n
    scale = 100 / max(seconds * rate, 1)

    def top(counter: Counter[str]) -> list[list[object]]:
        return [[f, round(n * scale, 1)] for f, n in counter.most_common(PROFILE_TOP)]

    return {"unit": "% of one CPU", "threads": top(threads), "self": top(self_count),
            "inclusive": top(incl_count), "self_by_library": top(by_library)}  # fmt: skip


LIBRARIES = ("sqlalchemy", "aiosqlite", "sqlite3", "uvicorn", "httptools", "starlette",
             "msgspec", "uvloop", "asyncio", "service", "models", "logging", "threading",
             "concurrent", "anyio", "json", "uuid")  # fmt: skip


def library_of(frame: str) -> str:
    """'name (path/to/lib/file.py:12)' -> the library directory the frame's file lives in."""
    where = frame.rpartition("(")[2]
    for lib in LIBRARIES:
        if f"/{lib}/" in where or where.startswith(f"{lib}/") or f"{lib}." in where.split("/")[-1]:
            return lib
    return "other"


def profile(
    pid: int, port: int, plan: Path, tmp: Path, args: argparse.Namespace, name: str
) -> dict:
    """py-spy on the API process under the plan's load, in a run of its own (not timed)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    raw = tmp / f"{name}_profile.txt"
    duration = max(1, round(args.seconds))
    spy = subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(duration), "-r",
                            str(PYSPY_RATE), "--nonblocking", "--format", "raw", "-o", str(raw)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    load = loadgen(port, plan, args, warmup=0, seconds=duration + 1)
    out, _ = spy.communicate(timeout=60)
    if spy.returncode != 0 or not raw.exists():
        return {"skipped": f"py-spy failed: {out[-500:]}"}
    summary = summarize_profile(raw, duration, PYSPY_RATE)
    kept = ROOT / "bench" / "results" / f"{name}_profile.txt"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(raw, kept)
    summary |= {"tool": "py-spy --nonblocking", "rate_hz": PYSPY_RATE,
                "requests_per_s_while_profiled": load["requests_per_s"],
                "raw": str(kept.relative_to(ROOT))}  # fmt: skip
    return summary


def scenario_submit(args: argparse.Namespace, tmp: Path) -> dict:
    record: dict = {"bench": "submit", "load_average_start": load_average()}
    with api(tmp) as (proc, port, url):
        path = submit_path(port)
        plan = write_plan(tmp, [["POST", path, BODY]])
        record["path"] = path
        record["songqueue"] = served(proc.pid, port, plan, args)
        # claims while the same load runs: a worker-style claimer polling every 50 ms
        start_at = time.time() + CLAIM_START_DELAY
        claims = claimer(url, start_at, seconds=max(1.0, args.seconds - 2), interval=0.05)
        record["songqueue_with_claimer"] = served(proc.pid, port, plan, args,
                                                  seconds=args.seconds + CLAIM_START_DELAY)
        record["claim_under_load"] = claimer_result(claims)
        # claims on the idle service (thousands of jobs queued, no HTTP load)
        idle = claimer(url, time.time(), count=args.idle_claims, interval=0.01, seconds=60)
        record["claim_idle"] = claimer_result(idle)
        if args.profile:
            record["profile"] = profile(proc.pid, port, plan, tmp, args, "submit")
        record["api_memory_mib"] = memory_mib(proc.pid)
    record["ceiling"] = ceiling(tmp, args, [["POST", path, BODY]])
    record["ratio_to_ceiling"] = round(
        record["songqueue"]["requests_per_s"] / record["ceiling"]["requests_per_s"], 3)
    return record


def seed_jobs(port: int, count: int) -> list[str]:
    """``count`` queued jobs through the real API (no worker runs, so they stay queued)."""
    ids = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for _ in range(count):
            ids.append(client.post("/v1/music/generate", json=BODY).json()["job_id"])
    return ids


def scenario_polls(args: argparse.Namespace, tmp: Path) -> dict:
    record: dict = {"bench": "polls", "jobs": args.jobs, "load_average_start": load_average()}
    with api(tmp) as (proc, port, _url):
        ids = seed_jobs(port, args.jobs)
        random.Random(0).shuffle(ids)
        get_rows: list[list[object]] = [["GET", f"/v1/jobs/{i}", None] for i in ids]
        get_plan = write_plan(tmp, get_rows)
        record["get_v1_jobs"] = served(proc.pid, port, get_plan, args)
        query_plan = write_plan(tmp, [["POST", "/query_result", {"task_id_list": [i]}]
                                      for i in ids])  # fmt: skip
        record["query_result"] = served(proc.pid, port, query_plan, args)
        if args.profile:
            record["profile"] = profile(proc.pid, port, get_plan, tmp, args, "polls")
        stats = httpx.get(f"http://127.0.0.1:{port}/v1/jobs/{ids[-1]}", timeout=30).json()
        record["last_job_queue_position"] = stats.get("queue_position")
    record["ceiling_get"] = ceiling(tmp, args, get_rows)
    record["ratio_to_ceiling"] = round(
        record["get_v1_jobs"]["requests_per_s"] / record["ceiling_get"]["requests_per_s"], 3)
    return record


def scenario_memory(args: argparse.Namespace, tmp: Path) -> dict:
    """RSS of the API process at start, after 10 % of the requests, and at the end."""
    record: dict = {"bench": "memory", "requests": args.requests,
                    "load_average_start": load_average()}  # fmt: skip
    with api(tmp) as (proc, port, _url):
        ids = seed_jobs(port, 100)
        rows: list[list[object]] = []
        for i in ids:
            rows += [["GET", "/health", None], ["GET", f"/v1/jobs/{i}", None]]
        plan = write_plan(tmp, rows)
        first = args.requests // 10
        cap = args.memory_seconds
        record["rss_start_mib"] = memory_mib(proc.pid)["rss_mib"]
        a = loadgen(port, plan, args, requests=first, warmup=0, tool="asyncio", seconds=cap / 5)
        record["rss_after_first_mib"] = memory_mib(proc.pid)["rss_mib"]
        b = loadgen(port, plan, args, requests=args.requests - a["requests"], warmup=0,
                    tool="asyncio", seconds=cap - a["seconds"])
        mem = memory_mib(proc.pid)
        record["rss_end_mib"] = mem["rss_mib"]
        record["peak_rss_mib"] = mem["peak_rss_mib"]
        record["first_requests"] = a["requests"]
        record["requests_done"] = a["requests"] + b["requests"]
        record["capped"] = record["requests_done"] < args.requests
        record["requests_per_s"] = round((a["requests"] + b["requests"])
                                         / (a["seconds"] + b["seconds"]), 1)  # fmt: skip
        record["non_2xx"] = a["non_2xx"] + b["non_2xx"]
        record["growth_after_first_mib"] = round(
            record["rss_end_mib"] - record["rss_after_first_mib"], 1)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["submit", "polls", "memory"])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per load")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--tool", choices=["auto", "wrk", "asyncio"], default="auto")
    parser.add_argument("--idle-claims", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="py-spy the submission path")
    parser.add_argument("--jobs", type=int, default=1000, help="queued jobs for polls")
    parser.add_argument("--requests", type=int, default=100_000, help="requests for memory")
    parser.add_argument("--memory-seconds", type=float, default=600.0,
                        help="cap on the memory run's length (seconds)")
    args = parser.parse_args(argv)
    scenarios = {"submit": scenario_submit, "polls": scenario_polls, "memory": scenario_memory}
    with tempfile.TemporaryDirectory(prefix="songqueue-bench-") as tmp:
        emit(scenarios[args.scenario](args, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
