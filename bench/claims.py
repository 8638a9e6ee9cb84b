"""Claims per second with 4 worker processes, SQLite next to PostgreSQL.

Each process runs the queue's real ``claim`` + ``complete`` statements in a tight loop (no
engine), so the figure is the queue's own ceiling. Prints a table and one JSON line.

    python bench/claims.py [--jobs 2000] [--workers 4] [--pg postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.schemas import GenerationRequest, JobResult, ResultFile
from service.store import queue
from service.store.db import open_database
from service.store.migrate import upgrade
from tests import pg

RESULT = JobResult(
    files=[ResultFile(path="x", format="wav", seed=0, duration=1.0)],
    engine="bench",
    model_name="bench",
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


async def _fill(url: str, jobs: int) -> None:
    db = open_database(url)
    request = GenerationRequest(prompt="bench", audio_duration=1.0, batch_size=1, seeds=[0])
    for _ in range(jobs):
        await queue.enqueue(db, job_id=str(uuid.uuid4()), request=request, duration=1.0)
    await db.dispose()


async def _claimer(url: str, name: str, start_at: float) -> tuple[int, list[float]]:
    db = open_database(url)
    await queue.register_worker(
        db, worker_id=name, host="bench", pid=0, engine="bench", model_name="bench"
    )
    while time.time() < start_at:
        await asyncio.sleep(0.001)
    latencies: list[float] = []
    while True:
        t0 = time.perf_counter()
        claimed = await queue.claim(db, worker_id=name, engine="bench", lease_seconds=60)
        latencies.append(time.perf_counter() - t0)
        if claimed is None:
            break
        await queue.complete(db, claimed, RESULT)
    await db.dispose()
    return len(latencies) - 1, latencies[:-1]


def _claimer_process(url: str, name: str, start_at: float, out: mp.Queue) -> None:
    out.put(asyncio.run(_claimer(url, name, start_at)))


def run(url: str, jobs: int, workers: int) -> dict[str, float]:
    upgrade(url)
    asyncio.run(_fill(url, jobs))
    out: mp.Queue = mp.Queue()
    start_at = time.time() + 2.0
    procs = [
        mp.Process(target=_claimer_process, args=(url, f"w{i}", start_at, out))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.time() - start_at
    claims = sum(n for n, _ in results)
    latencies = [x for _, lat in results for x in lat]
    return {
        "claims": claims,
        "claims_per_s": round(claims / elapsed, 1),
        "claim_p50_ms": round(1000 * percentile(latencies, 0.5), 2),
        "claim_p99_ms": round(1000 * percentile(latencies, 0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run(f"sqlite+aiosqlite:///{tmp}/bench.db", args.jobs, args.workers)
    reason = pg.unavailable_reason()
    if reason is None:
        name = pg.new_name("sq_bench")
        pg.admin(f'CREATE DATABASE "{name}"')
        try:
            results["postgresql"] = run(pg.database_url(name), args.jobs, args.workers)
        finally:
            pg.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        print(f"PostgreSQL skipped: {reason}")
    print(f"{'backend':<12}{'claims/s':>10}{'p50 ms':>10}{'p99 ms':>10}   ({args.workers} workers)")
    for backend, r in results.items():
        print(f"{backend:<12}{r['claims_per_s']:>10}{r['claim_p50_ms']:>10}{r['claim_p99_ms']:>10}")
    print(json.dumps({"workers": args.workers, **results}))


if __name__ == "__main__":
    main()
