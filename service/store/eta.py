"""Queue ETA from rolling per-step timings (spec/job-queue.md §3.3).

Each finished job feeds a moving average of seconds per engine step, of the time outside the
steps (decoding, encoding, writing) and of the steps a job takes, keyed by engine, task type,
duration bucket and batch size, and persisted in ``timing_stats`` so restarts keep them. A job's
expected time is ``overhead + steps × step_seconds``, scaled by audio length within a key. The
ETA walks the queue in claim order over a min-heap of the alive workers' free times, seeded
with the running jobs' remaining steps. With no statistics (or no workers) it says ``None``
rather than guess.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from service.store.db import Database
from service.store.queue import alive_workers_in
from service.store.tables import jobs, timing_stats

DURATION_BUCKETS = (30.0, 60.0, 95.0, 180.0, 285.0)  # seconds; longer falls in a last bucket
EMA_ALPHA = 0.25  # weight of a new sample once a key has PLAIN_MEAN_SAMPLES
PLAIN_MEAN_SAMPLES = 5  # plain mean until then: early samples are all we know
OUTLIER_FACTOR = 3.0  # samples above 3× the average step time are ignored
OWN_RATE_MIN_STEPS = 3  # a running job's own step rate is trusted after this many steps
SNAPSHOT_MAX_AGE = 1.0  # seconds an ETA walk of the queue is reused
MIN_REBUILD_INTERVAL = 0.1  # seconds: a job missing from the snapshot waits at most this long
WORKER_ALIVE_SECONDS = 30.0  # a worker without a heartbeat for this long is not counted
AVG_WINDOW = 50  # jobs in the avg_job_seconds mean (as ACE-Step)


def duration_bucket(duration: float) -> int:
    return bisect_left(DURATION_BUCKETS, duration)


def stats_key(engine: str, task_type: str, duration: float, batch_size: int) -> str:
    return f"{engine}|{task_type}|{duration_bucket(duration)}|{batch_size}"


@dataclass(frozen=True)
class TimingStat:
    key: str
    samples: int
    step_seconds: float
    overhead_seconds: float
    steps: float
    duration: float

    @property
    def batch_size(self) -> int:
        return int(self.key.rsplit("|", 1)[1])


@dataclass(frozen=True)
class TimingSample:
    """What one successful job measured."""

    engine: str
    task_type: str
    duration: float
    batch_size: int
    steps: int
    step_seconds: float
    overhead_seconds: float

    @property
    def key(self) -> str:
        return stats_key(self.engine, self.task_type, self.duration, self.batch_size)


def updated_stat(current: TimingStat | None, sample: TimingSample) -> TimingStat | None:
    """The moving averages after one more sample; None when the sample is an outlier."""
    if current is None:
        return TimingStat(
            sample.key,
            1,
            sample.step_seconds,
            sample.overhead_seconds,
            sample.steps,
            sample.duration,
        )
    if current.samples >= PLAIN_MEAN_SAMPLES and (
        sample.step_seconds > OUTLIER_FACTOR * current.step_seconds
    ):
        return None
    n = current.samples + 1
    alpha = 1.0 / n if n <= PLAIN_MEAN_SAMPLES else EMA_ALPHA

    def mix(old: float, new: float) -> float:
        return old + alpha * (new - old)

    return TimingStat(
        current.key,
        n,
        mix(current.step_seconds, sample.step_seconds),
        mix(current.overhead_seconds, sample.overhead_seconds),
        mix(current.steps, sample.steps),
        mix(current.duration, sample.duration),
    )


def record_sample(conn: Connection, sample: TimingSample) -> None:
    """Fold one sample into ``timing_stats`` (call inside the job's completing transaction)."""
    row = conn.execute(sa.select(timing_stats).where(timing_stats.c.key == sample.key)).first()
    current = None if row is None else _stat_from_row(row)
    new = updated_stat(current, sample)
    if new is None:
        return
    values = {
        "samples": new.samples,
        "step_seconds": new.step_seconds,
        "overhead_seconds": new.overhead_seconds,
        "steps": new.steps,
        "duration": new.duration,
        "updated_at": time.time(),
    }
    write_stat(conn, new, values, exists=row is not None)


def write_stat(conn: Connection, stat: TimingStat, values: dict[str, Any], *, exists: bool) -> None:
    """Store a key's new averages. A key seen for the first time is an upsert: two workers may
    finish its first job at once, and a duplicate key would roll back, and so re-run, a
    finished job."""
    if exists:
        conn.execute(timing_stats.update().where(timing_stats.c.key == stat.key).values(values))
        return
    insert = _upsert_dialect(conn).insert(timing_stats).values(key=stat.key, **values)
    conn.execute(insert.on_conflict_do_update(index_elements=["key"], set_=values))


def _upsert_dialect(conn: Connection) -> Any:
    """The dialect module whose ``insert`` has ``on_conflict_do_update`` (both have it)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql
    from sqlalchemy.dialects import sqlite

    return sqlite


def _stat_from_row(row: sa.Row) -> TimingStat:
    return TimingStat(
        row.key, row.samples, row.step_seconds, row.overhead_seconds, row.steps, row.duration
    )


@dataclass(frozen=True)
class Estimate:
    steps: float
    step_seconds: float
    overhead_seconds: float

    @property
    def total(self) -> float:
        return self.overhead_seconds + self.steps * self.step_seconds


@dataclass
class TimingTable:
    """All statistics, with the fallback order used when a key has no samples yet."""

    stats: dict[str, TimingStat] = field(default_factory=dict)

    def estimate(
        self, engine: str, task_type: str, duration: float, batch_size: int
    ) -> Estimate | None:
        exact = self.stats.get(stats_key(engine, task_type, duration, batch_size))
        if exact is not None:
            return _scaled(exact, duration / max(exact.duration, 1e-6))
        # Nearest relative: same engine and task (then any task), scaled by audio produced.
        prefix = f"{engine}|{task_type}|"
        for candidates in (
            [s for k, s in self.stats.items() if k.startswith(prefix)],
            [s for k, s in self.stats.items() if k.startswith(f"{engine}|")],
        ):
            if candidates:
                best = max(candidates, key=lambda s: s.samples)
                work = duration * batch_size / max(best.duration * best.batch_size, 1e-6)
                return _scaled(best, work)
        return None


def _scaled(stat: TimingStat, factor: float) -> Estimate:
    return Estimate(stat.steps, stat.step_seconds * factor, stat.overhead_seconds)


def load_timing_table(conn: Connection) -> TimingTable:
    rows = conn.execute(sa.select(timing_stats)).all()
    return TimingTable({r.key: _stat_from_row(r) for r in rows})


@dataclass(frozen=True)
class JobEta:
    start_in: float  # seconds until a worker starts it (0 when running)
    finish_in: float  # seconds until it finishes


@dataclass
class QueueSnapshot:
    """ETAs of every active job, computed by one walk of the queue."""

    computed_at: float
    etas: dict[str, JobEta | None]
    avg_job_seconds: float | None
    workers: int


def remaining_seconds(
    estimate: Estimate | None,
    *,
    steps_done: int,
    steps_total: int,
    started_at: float,
    last_step_at: float | None,
    now: float,
) -> float | None:
    """Time left for a running job, from its own step rate once it has a few steps."""
    if steps_total and steps_done >= OWN_RATE_MIN_STEPS and last_step_at is not None:
        own_rate = (last_step_at - started_at) / steps_done
        overhead = estimate.overhead_seconds if estimate else 0.0
        left = (steps_total - steps_done) * own_rate + overhead - (now - last_step_at)
        return max(left, 0.0)
    if estimate is None:
        return None
    steps_total = steps_total or round(estimate.steps)
    left_steps = max(steps_total - steps_done, 0)
    left = (
        estimate.overhead_seconds
        + left_steps * estimate.step_seconds
        - (now - (last_step_at or started_at))
    )
    return max(left, 0.0)


def walk_queue(
    busy: list[tuple[str, str, float | None]],
    idle_engines: list[str],
    queued: list[tuple[str, object]],
    estimate_for: Callable[[str, object], Estimate | None],
) -> dict[str, JobEta | None]:
    """Assign queued jobs, in claim order, to whichever worker frees first.

    ``busy``: (job_id, engine, remaining seconds or None) per busy worker; ``idle_engines``:
    the engine of each idle worker; ``queued``: (job_id, job facts) in claim order;
    ``estimate_for(engine, facts)`` gives an ``Estimate`` or None.
    """
    etas: dict[str, JobEta | None] = {}
    heap: list[tuple[float, int, str]] = []
    unknown = False  # once one worker's free time is unknown, later starts are unknown too
    for i, (job_id, engine, left) in enumerate(busy):
        etas[job_id] = None if left is None else JobEta(0.0, left)
        if left is None:
            unknown = True
        else:
            heap.append((left, i, engine))
    for j, engine in enumerate(idle_engines):
        heap.append((0.0, len(busy) + j, engine))
    heapq.heapify(heap)
    for job_id, facts in queued:
        if not heap or unknown:
            etas[job_id] = None
            continue
        free_at, slot, engine = heapq.heappop(heap)
        est = estimate_for(engine, facts)
        if est is None:
            etas[job_id] = None
            unknown = True
            continue
        etas[job_id] = JobEta(free_at, free_at + est.total)
        heapq.heappush(heap, (free_at + est.total, slot, engine))
    return etas


async def build_snapshot(db: Database) -> QueueSnapshot:
    """Read the active jobs, workers and statistics, and compute every active job's ETA."""
    now = time.time()
    cols = (
        jobs.c.job_id,
        jobs.c.task_type,
        jobs.c.duration,
        jobs.c.batch_size,
        jobs.c.worker_id,
        jobs.c.steps_done,
        jobs.c.steps_total,
        jobs.c.started_at,
        jobs.c.last_step_at,
    )

    def read(conn: Connection) -> tuple[Any, ...]:
        """Everything the walk needs, from one snapshot in one hop."""
        running = conn.execute(sa.select(*cols).where(jobs.c.status == "running")).all()
        queued = conn.execute(
            sa.select(*cols)
            .where(jobs.c.status == "queued")
            .order_by(jobs.c.priority.desc(), jobs.c.id)
        ).all()
        avg = conn.scalar(
            sa.select(sa.func.avg(sa.literal_column("d"))).select_from(
                sa.select((jobs.c.finished_at - jobs.c.started_at).label("d"))
                .where(jobs.c.status == "succeeded")
                .order_by(jobs.c.finished_at.desc())
                .limit(AVG_WINDOW)
                .subquery()
            )
        )
        alive = alive_workers_in(conn, within_seconds=WORKER_ALIVE_SECONDS)
        return load_timing_table(conn), alive, running, queued, avg

    table, alive, running, queued, avg = await db.run_read(read)

    engine_of = {w.worker_id: w.engine for w in alive}
    busy: list[tuple[str, str, float | None]] = []
    busy_workers: set[str] = set()
    orphans: dict[str, JobEta | None] = {}
    for r in running:
        engine = engine_of.get(r.worker_id or "")
        est = table.estimate(engine, r.task_type, r.duration, r.batch_size) if engine else None
        left = remaining_seconds(
            est,
            steps_done=r.steps_done,
            steps_total=r.steps_total,
            started_at=r.started_at or now,
            last_step_at=r.last_step_at,
            now=now,
        )
        if engine is None or r.worker_id in busy_workers:
            orphans[r.job_id] = None if left is None else JobEta(0.0, left)
            continue
        busy_workers.add(r.worker_id)
        busy.append((r.job_id, engine, left))
    idle = [w.engine for w in alive if w.worker_id not in busy_workers]

    def estimate_for(engine: str, facts: object) -> Estimate | None:
        task_type, duration, batch_size = facts  # type: ignore[misc]
        return table.estimate(engine, task_type, duration, batch_size)

    etas = walk_queue(
        busy,
        idle,
        [(r.job_id, (r.task_type, r.duration, r.batch_size)) for r in queued],
        estimate_for,
    )
    etas.update(orphans)
    return QueueSnapshot(now, etas, float(avg) if avg is not None else None, len(alive))


class EtaCache:
    """One snapshot per process, rebuilt when older than ``SNAPSHOT_MAX_AGE`` or missing a job
    (then at most every ``MIN_REBUILD_INTERVAL``), by one request at a time: concurrent polls
    wait for that rebuild instead of each walking the whole queue."""

    def __init__(self, db: Database, max_age: float = SNAPSHOT_MAX_AGE) -> None:
        self.db = db
        self.max_age = max_age
        self._snapshot: QueueSnapshot | None = None
        self._rebuilding = asyncio.Lock()

    def _needs_rebuild(self, must_have: str | None) -> bool:
        snap = self._snapshot
        if snap is None:
            return True
        missing = must_have is not None and must_have not in snap.etas
        return missing or time.time() - snap.computed_at > self.max_age

    async def snapshot(self, must_have: str | None = None) -> QueueSnapshot:
        snap = self._snapshot
        if snap is not None and must_have is not None and must_have not in snap.etas:
            # A new job: wait until the snapshot is MIN_REBUILD_INTERVAL old, so that a burst
            # of submissions costs ten walks a second at most, not one walk per request.
            await asyncio.sleep(max(MIN_REBUILD_INTERVAL - (time.time() - snap.computed_at), 0))
        if self._needs_rebuild(must_have):
            async with self._rebuilding:
                if self._needs_rebuild(must_have):  # another request may have just done it
                    self._snapshot = await build_snapshot(self.db)
        assert self._snapshot is not None
        return self._snapshot

    async def eta(self, job_id: str) -> JobEta | None:
        snap = await self.snapshot(must_have=job_id)
        eta = snap.etas.get(job_id)
        if eta is None:
            return None
        elapsed = time.time() - snap.computed_at
        return JobEta(max(eta.start_in - elapsed, 0.0), max(eta.finish_in - elapsed, 0.0))
