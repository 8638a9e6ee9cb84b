"""Submissions per second and latency at 16 concurrent clients; enqueue-to-start on an idle worker.

Starts a fresh ``songqueue serve`` (and later a worker) on loopback with a temporary home, so
each run measures a clean database. Prints a table and one JSON line. Not a test: no assertions.

    python bench/queue_api.py [--clients 16] [--seconds 10] [--pickups 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.store.migrate import upgrade
from service.store.tables import jobs
from tests.processes import free_port, process_env, songqueue, stop, wait_http

WARMUP_SECONDS = 2.0
BODY = {"caption": "lofi hip hop with piano", "audio_duration": 10, "batch_size": 1}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def load(base: str, path: str, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop_at = 0.0

    async def client_loop(measure: bool) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                response = await client.post(path, json=BODY)
                if response.status_code != 200:
                    errors += 1
                if measure:
                    latencies.append(time.perf_counter() - t0)

    stop_at = time.perf_counter() + WARMUP_SECONDS
    await asyncio.gather(*(client_loop(False) for _ in range(clients)))
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(client_loop(True) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "errors": errors,
        "requests": len(latencies),
    }


def pickup_latencies(base: str, db_url: str, count: int) -> list[float]:
    """Submit one job at a time to an idle worker; started_at - created_at for each."""
    ids = []
    for _ in range(count):
        job_id = httpx.post(f"{base}/v1/music/generate", json=BODY).json()["job_id"]
        ids.append(job_id)
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/v1/jobs/{job_id}").json()["status"] != "succeeded":
            if time.monotonic() > deadline:
                raise RuntimeError("job did not finish")
            time.sleep(0.02)
        time.sleep(0.3)  # let the worker go idle again
    engine = sa.create_engine(db_url.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(jobs.c.started_at - jobs.c.created_at).where(jobs.c.job_id.in_(ids))
        ).scalars()
        values = list(rows)
    engine.dispose()
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pickups", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        db_url = f"sqlite+aiosqlite:///{home / 'songqueue.db'}"
        upgrade(db_url)
        env = process_env(home, SONGQUEUE_QUEUE_MAXSIZE="100000000")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api = songqueue(["serve", "--port", str(port)], env, Path(tmp) / "api.log")
        try:
            wait_http(base)
            submit = asyncio.run(load(base, "/v1/music/generate", args.clients, args.seconds))
            # drain the backlog so the pickup test sees an idle worker
            engine = sa.create_engine(db_url.replace("+aiosqlite", ""))
            with engine.begin() as conn:
                conn.execute(jobs.delete())
            engine.dispose()
            worker_env = process_env(home, SONGQUEUE_TEST_STEPS="1")
            worker = songqueue(
                ["worker", "--engine", "models.testing:TimedEngine"],
                worker_env,
                Path(tmp) / "worker.log",
            )
            try:
                time.sleep(2.0)
                pickups = pickup_latencies(base, db_url, args.pickups)
            finally:
                stop(worker)
        finally:
            stop(api)
    result = {
        "submit_clients": args.clients,
        "submit_requests_per_s": round(submit["requests_per_s"], 1),
        "submit_p50_ms": round(submit["p50_ms"], 1),
        "submit_p99_ms": round(submit["p99_ms"], 1),
        "submit_errors": submit["errors"],
        "pickup_p50_ms": round(1000 * statistics.median(pickups), 1),
        "pickup_p99_ms": round(1000 * percentile(pickups, 0.99), 1),
        "pickup_max_ms": round(1000 * max(pickups), 1),
    }
    print(f"{'metric':<28}{'value':>12}")
    for key, value in result.items():
        print(f"{key:<28}{value:>12}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
