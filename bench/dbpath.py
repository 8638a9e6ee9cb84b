"""What one request's database work costs in the API process, without HTTP.

Every statement through SQLAlchemy's aiosqlite adapter is several hops to the connection's
thread and back (cursor, execute, fetch, close), each a queue put, a GIL hand-off and a
``call_soon_threadsafe``. This counts the hops of a submission's database work (the group-commit
insert and the queue position read) and of ``get_job``, and times, in this process:

* ``sqlite3`` ``SELECT 1`` (the floor), one raw aiosqlite ``execute``, one SQLAlchemy
  ``exec_driver_sql("SELECT 1")`` over aiosqlite;
* the submission's database work, one at a time: CPU ms and wall ms per submission.

    python bench/dbpath.py [--n 300]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import aiosqlite.core

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit
from service.schemas import GenerationRequest, Job
from service.store import queue
from service.store.db import Database, open_database
from service.store.migrate import upgrade

WARMUP = 30  # untimed operations before each timing
REQUEST = GenerationRequest(prompt="bench", audio_duration=10.0, batch_size=1, seeds=[1])


class HopCounter:
    """Counts ``aiosqlite.Connection._execute`` calls: one per hop to the connection thread."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._orig = aiosqlite.core.Connection._execute

    def __enter__(self) -> HopCounter:
        orig, calls = self._orig, self.calls

        async def counting(conn: object, fn: Callable[..., object], *a: object,
                           **k: object) -> object:  # fmt: skip
            calls[getattr(fn, "__name__", type(fn).__name__)] += 1
            return await orig(conn, fn, *a, **k)

        aiosqlite.core.Connection._execute = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        aiosqlite.core.Connection._execute = self._orig  # type: ignore[method-assign]


async def submission(db: Database) -> Job:
    """What ``POST /release_task`` asks of the database: insert (group commit), then position."""
    job_id = str(uuid.uuid4())
    if hasattr(queue, "enqueue_many") and hasattr(queue, "NewJob"):
        new = queue.NewJob(job_id=job_id, request=REQUEST, duration=10.0,
                           queue_maxsize=1_000_000_000)  # fmt: skip
        outcome = (await queue.enqueue_many(db, [new]))[0]
        if isinstance(outcome, Exception):
            raise outcome
        job = outcome.job
    else:
        job = (await queue.enqueue(db, job_id=job_id, request=REQUEST, duration=10.0,
                                   queue_maxsize=1_000_000_000)).job  # fmt: skip
    async with db.read() as conn:
        await queue.queue_position(conn, job)
    return job


async def per_op(fn: Callable[[], Awaitable[object]], n: int) -> dict[str, float]:
    """CPU and wall milliseconds per call, after WARMUP untimed calls."""
    for _ in range(WARMUP):
        await fn()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await fn()
    return {"cpu_ms": round(1000 * (time.process_time() - cpu0) / n, 4),
            "wall_ms": round(1000 * (time.perf_counter() - wall0) / n, 4)}  # fmt: skip


async def measure(tmp: Path, n: int) -> dict:
    url = f"sqlite+aiosqlite:///{tmp / 'songqueue.db'}"
    upgrade(url)
    db = open_database(url)
    record: dict = {"bench": "dbpath", "n": n}
    try:
        job = await submission(db)
        with HopCounter() as hops:
            await submission(db)
        record["hops_per_submission"] = sum(hops.calls.values())
        record["hops_by_kind"] = dict(hops.calls)
        with HopCounter() as hops:
            await queue.get_job(db, job.job_id)
        record["hops_per_get_job"] = sum(hops.calls.values())
        record["submission"] = await per_op(lambda: submission(db), n)
        async with db.read() as conn:
            record["sqlalchemy_select1"] = await per_op(
                lambda: conn.exec_driver_sql("SELECT 1"), n * 4)
    finally:
        await db.dispose()
    async with aiosqlite.connect(tmp / "raw.db") as raw:
        record["aiosqlite_select1"] = await per_op(lambda: raw.execute("SELECT 1"), n * 4)
    conn = sqlite3.connect(tmp / "raw.db")
    t0 = time.perf_counter()
    for _ in range(n * 4):
        conn.execute("SELECT 1")
    record["sqlite3_select1_ms"] = round(1000 * (time.perf_counter() - t0) / (n * 4), 4)
    conn.close()
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="timed operations per figure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="songqueue-dbpath-") as tmp:
        emit(asyncio.run(measure(Path(tmp), args.n)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
