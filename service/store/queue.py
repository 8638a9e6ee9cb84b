"""Every statement that touches ``jobs`` and ``workers``: one named async function each.

Claims, renewals and completions are fenced by the job's ``lease_token``: a worker whose lease
expired (and whose job another worker re-claimed) matches zero rows and gets ``LeaseLost``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from service.errors import JobNotFound, LeaseLost, QueueFull
from service.schemas import GenerationRequest, Job, JobResult, request_decoder, result_decoder
from service.store.db import Database
from service.store.tables import ACTIVE_STATUSES, FINISHED_STATUSES, jobs, workers

MAX_BACKOFF_SECONDS = 600.0


def row_to_job(row: Row) -> Job:
    """Decode a ``jobs`` row into the ``Job`` the API renders."""
    m = row._mapping
    return Job(
        id=m["id"],
        job_id=m["job_id"],
        api=m["api"],
        task_type=m["task_type"],
        status=m["status"],
        priority=m["priority"],
        request=request_decoder.decode(m["request"]),
        duration=m["duration"],
        batch_size=m["batch_size"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        worker_id=m["worker_id"],
        engine=m["engine"],
        steps_done=m["steps_done"],
        steps_total=m["steps_total"],
        progress=m["progress"],
        stage=m["stage"],
        last_step_at=m["last_step_at"],
        cancel_requested=bool(m["cancel_requested"]),
        result=result_decoder.decode(m["result"]) if m["result"] else None,
        error=m["error"],
    )


# --- submitting -------------------------------------------------------------------------


@dataclass(frozen=True)
class Enqueued:
    job: Job
    created: bool  # False: an active job with the same idempotency key already existed
    position: int = 0  # queue position right after the insert (0 when not queued)


@dataclass(frozen=True)
class NewJob:
    """A job about to be inserted: what ``enqueue`` and ``enqueue_many`` take."""

    job_id: str
    request: GenerationRequest
    duration: float
    api: str = "acestep"
    priority: int = 0
    max_attempts: int = 3
    queue_maxsize: int | None = None
    idempotency_key: str | None = None
    status: str = "queued"
    error: str | None = None

    def values(self, now: float) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "api": self.api,
            "task_type": self.request.task_type,
            "status": self.status,
            "priority": self.priority,
            "request": msgspec.json.encode(self.request),
            "duration": self.duration,
            "batch_size": self.request.batch_size,
            "idempotency_key": self.idempotency_key,
            "created_at": now,
            "run_after": now,
            "finished_at": now if self.status in FINISHED_STATUSES else None,
            "max_attempts": self.max_attempts,
            "stage": self.status,
            "error": self.error,
        }


async def enqueue(db: Database, **fields: Any) -> Enqueued:
    """Insert one job in one short write transaction (fields as in ``NewJob``).

    Raises ``QueueFull`` when the queue is at its limit.
    """
    new = NewJob(**fields)
    try:
        return await db.run_write(lambda conn: _enqueue_sync(conn, new))
    except IntegrityError as exc:
        return await _existing_after_race(db, new, exc)


async def enqueue_many(db: Database, batch: Sequence[NewJob]) -> list[Enqueued | Exception]:
    """Insert several jobs in ONE transaction: one commit (one fsync) for all of them.

    Each item gets its own outcome (a refused item, e.g. ``QueueFull``, does not stop the
    others). This is group commit for concurrent submissions (``service/store/batching.py``).
    """
    try:
        return await db.run_write(lambda conn: _enqueue_many_sync(conn, batch))
    except IntegrityError:
        # PostgreSQL: an idempotency key raced another process; the transaction is gone,
        # so take the batch again one job at a time.
        singles: list[Enqueued | Exception] = []
        for new in batch:
            try:
                singles.append(await enqueue(db, **new.__dict__))
            except QueueFull as exc:
                singles.append(exc)
        return singles


class _QueuedTally:
    """Queued jobs per priority, counted once per transaction and kept up to date as rows are
    inserted: the queue limit and each new job's position then cost no extra scan."""

    def __init__(self, conn: Connection) -> None:
        rows = conn.execute(
            sa.select(jobs.c.priority, sa.func.count())
            .where(jobs.c.status == "queued")
            .group_by(jobs.c.priority)
        ).all()
        self.by_priority: dict[int, int] = {int(p): int(n) for p, n in rows}

    @property
    def depth(self) -> int:
        return sum(self.by_priority.values())

    def add(self, priority: int) -> int:
        """Count a new queued job (the newest, so last among its priority); its position."""
        ahead = sum(n for p, n in self.by_priority.items() if p >= priority)
        self.by_priority[priority] = self.by_priority.get(priority, 0) + 1
        return ahead + 1


def _enqueue_sync(conn: Connection, new: NewJob) -> Enqueued:
    result = _insert(conn, new, _QueuedTally(conn))
    if result.created and new.status == "queued":
        _notify(conn)
    return result


INSERT_RETURNING_IDS = jobs.insert().returning(jobs.c.id, sort_by_parameter_order=True)


def _enqueue_many_sync(conn: Connection, batch: Sequence[NewJob]) -> list[Enqueued | Exception]:
    """Keyed jobs one by one (they look for an active twin first); the rest in ONE multi-row
    INSERT built once, with the new rows' ids returned in order."""
    outcomes: list[Enqueued | Exception | None] = []
    tally = _QueuedTally(conn)
    plain: list[tuple[int, NewJob, int]] = []  # (index in outcomes, job, its position)
    for new in batch:
        try:
            if new.idempotency_key is not None:
                outcomes.append(_insert(conn, new, tally))
                continue
            queued = new.status == "queued"
            if queued and new.queue_maxsize is not None and tally.depth >= new.queue_maxsize:
                raise QueueFull()
            plain.append((len(outcomes), new, tally.add(new.priority) if queued else 0))
            outcomes.append(None)
        except QueueFull as exc:
            outcomes.append(exc)
    if plain:
        now = time.time()
        rows = [new.values(now) for _, new, _ in plain]
        ids = [row.id for row in conn.execute(INSERT_RETURNING_IDS, rows).all()]
        for (index, new, position), job_id, values in zip(plain, ids, rows, strict=True):
            outcomes[index] = Enqueued(_new_job(new, job_id, values), True, position)
    if any(isinstance(o, Enqueued) and o.created for o in outcomes):
        _notify(conn)
    return [o for o in outcomes if o is not None]


def _new_job(new: NewJob, row_id: int, values: dict[str, Any]) -> Job:
    """The ``Job`` a fresh insert made, without reading the row back."""
    return Job(
        id=row_id,
        job_id=new.job_id,
        api=new.api,
        task_type=new.request.task_type,
        status=new.status,  # type: ignore[arg-type]
        priority=new.priority,
        request=new.request,
        duration=new.duration,
        batch_size=new.request.batch_size,
        created_at=values["created_at"],
        started_at=None,
        finished_at=values["finished_at"],
        attempts=0,
        max_attempts=new.max_attempts,
        worker_id=None,
        engine=None,
        steps_done=0,
        steps_total=0,
        progress=0.0,
        stage=new.status,
        last_step_at=None,
        cancel_requested=False,
        result=None,
        error=new.error,
    )


def _insert(conn: Connection, new: NewJob, tally: _QueuedTally) -> Enqueued:
    if new.idempotency_key is not None:
        existing = _active_by_key(conn, new.idempotency_key)
        if existing is not None:
            job = row_to_job(existing)
            return Enqueued(job, created=False, position=_position(conn, job))
    queued = new.status == "queued"
    if queued and new.queue_maxsize is not None and tally.depth >= new.queue_maxsize:
        raise QueueFull()
    insert = jobs.insert().values(new.values(time.time())).returning(*jobs.c)
    job = row_to_job(conn.execute(insert).one())
    return Enqueued(job, created=True, position=tally.add(new.priority) if queued else 0)


async def _existing_after_race(db: Database, new: NewJob, exc: IntegrityError) -> Enqueued:
    """PostgreSQL: a concurrent submission with the same idempotency key won the race."""
    if new.idempotency_key is not None:
        key = new.idempotency_key
        existing = await db.run_read(lambda conn: _active_by_key(conn, key))
        if existing is not None:
            job = row_to_job(existing)
            return Enqueued(job, created=False, position=await position_of(db, job))
    raise exc


NEW_JOB_CHANNEL = "songqueue_jobs"


async def notify_new_job(conn: AsyncConnection) -> None:
    """Wake listening workers. PostgreSQL delivers NOTIFY at commit; SQLite workers watch
    ``PRAGMA data_version`` instead, which every commit bumps, so there is nothing to send."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_notify(NEW_JOB_CHANNEL, "")))


def _notify(conn: Connection) -> None:
    """``notify_new_job`` inside a synchronous transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_notify(NEW_JOB_CHANNEL, "")))


def _active_by_key(conn: Connection, key: str) -> Row | None:
    stmt = sa.select(jobs).where(jobs.c.idempotency_key == key, jobs.c.status.in_(ACTIVE_STATUSES))
    return conn.execute(stmt).first()


# --- reading ------------------------------------------------------------------------------


async def get_job(db: Database, job_id: str) -> Job:
    row = await db.run_read(lambda conn: conn.execute(JOB_BY_ID, {"job_id": job_id}).first())
    if row is None:
        raise JobNotFound()
    return row_to_job(row)


async def get_job_with_position(db: Database, job_id: str) -> tuple[Job, int]:
    """A job and its queue position from one snapshot, in one hop (the status routes' read)."""

    def read(conn: Connection) -> tuple[Job, int]:
        row = conn.execute(JOB_BY_ID, {"job_id": job_id}).first()
        if row is None:
            raise JobNotFound()
        job = row_to_job(row)
        return job, _position(conn, job)

    return await db.run_read(read)


async def get_jobs_with_positions(
    db: Database, job_ids: Sequence[str]
) -> dict[str, tuple[Job, int]]:
    """The existing jobs among ``job_ids`` with their queue positions, in one hop."""
    if not job_ids:
        return {}
    ids = list(job_ids)

    def read(conn: Connection) -> dict[str, tuple[Job, int]]:
        found = {}
        for row in conn.execute(JOBS_BY_IDS, {"job_ids": ids}).all():
            job = row_to_job(row)
            found[job.job_id] = (job, _position(conn, job))
        return found

    return await db.run_read(read)


async def position_of(db: Database, job: Job) -> int:
    return await db.run_read(lambda conn: _position(conn, job))


async def get_jobs(db: Database, job_ids: Sequence[str]) -> dict[str, Job]:
    """The jobs that exist among ``job_ids``, by id."""
    if not job_ids:
        return {}
    ids = list(job_ids)
    rows = await db.run_read(lambda conn: conn.execute(JOBS_BY_IDS, {"job_ids": ids}).all())
    return {row.job_id: row_to_job(row) for row in rows}


async def list_jobs(db: Database, *, status: str | None = None, limit: int = 100) -> list[Job]:
    stmt = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(jobs.c.status == status)
    async with db.read() as conn:
        return [row_to_job(r) for r in (await conn.execute(stmt)).all()]


def _ahead(*conditions: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
    return (
        sa.select(sa.func.count())
        .select_from(jobs)
        .where(jobs.c.status == "queued", *conditions)
        .scalar_subquery()
    )


# Hot statements are built once with bind parameters: SQLAlchemy then finds their compiled
# form by identity instead of computing a cache key per call (about 0.5 ms each, measured).
# Jobs ahead: two range counts on ix_jobs_claim (an OR of the two scans every queued row,
# three times slower at 2,000 queued).
POSITION = sa.select(
    _ahead(jobs.c.priority > sa.bindparam("priority"))
    + _ahead(jobs.c.priority == sa.bindparam("priority"), jobs.c.id < sa.bindparam("id"))
)
JOB_BY_ID = sa.select(jobs).where(jobs.c.job_id == sa.bindparam("job_id"))
JOBS_BY_IDS = sa.select(jobs).where(jobs.c.job_id.in_(sa.bindparam("job_ids", expanding=True)))


def _position_params(job: Job) -> dict[str, int]:
    return {"priority": job.priority, "id": job.id}


def _position(conn: Connection, job: Job) -> int:
    """Queued jobs ahead of ``job`` in claim order, plus one; 0 when it is not queued."""
    if job.status != "queued":
        return 0
    return int(conn.scalar(POSITION, _position_params(job)) or 0) + 1


async def queue_position(conn: Any, job: Job) -> int:
    """``_position`` on an open async transaction (``async with db.read() as conn``)."""
    if job.status != "queued":
        return 0
    return int(await conn.scalar(POSITION, _position_params(job)) or 0) + 1


async def counts_by_status(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        rows = (
            await conn.execute(sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status))
        ).all()
    return {status: int(n) for status, n in rows}


# --- claiming and running ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    job: Job
    lease_token: str


_NEXT_CLAIMABLE = (
    sa.select(jobs.c.id)
    .where(jobs.c.status == "queued", jobs.c.run_after <= sa.bindparam("claim_now"))
    .order_by(jobs.c.priority.desc(), jobs.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
CLAIM = (
    jobs.update()
    .where(jobs.c.id == _NEXT_CLAIMABLE, jobs.c.status == "queued")
    .values(
        status="running",
        worker_id=sa.bindparam("claim_worker"),
        lease_token=sa.bindparam("claim_token"),
        lease_until=sa.bindparam("claim_lease_until"),
        attempts=jobs.c.attempts + 1,
        started_at=sa.bindparam("claim_now"),
        engine=sa.bindparam("claim_engine"),
        steps_done=0,
        progress=0.0,
        stage="starting",
        last_step_at=None,
    )
    .returning(*jobs.c)
)
WORKER_BUSY = (
    workers.update()
    .where(workers.c.worker_id == sa.bindparam("w_id"))
    .values(current_job=sa.bindparam("w_job"), heartbeat_at=sa.bindparam("w_now"))
)


async def claim(
    db: Database, *, worker_id: str, engine: str, lease_seconds: float
) -> Claimed | None:
    """Take the first queued job in claim order (priority DESC, id) with one UPDATE ... RETURNING.

    SQLite: the writer's BEGIN IMMEDIATE holds the database's single write lock, so no two
    claims can interleave. PostgreSQL: FOR UPDATE SKIP LOCKED lets concurrent claimers skip a
    row another transaction is claiming instead of waiting for it.
    """
    now = time.time()
    token = secrets.token_hex(16)
    params = {
        "claim_now": now,
        "claim_worker": worker_id,
        "claim_token": token,
        "claim_lease_until": now + lease_seconds,
        "claim_engine": engine,
    }

    def claim_one(conn: Connection) -> Row | None:
        row = conn.execute(CLAIM, params).first()
        if row is not None:
            conn.execute(WORKER_BUSY, {"w_id": worker_id, "w_job": row.job_id, "w_now": now})
        return row

    row = await db.run_write(claim_one)
    return None if row is None else Claimed(row_to_job(row), token)


def _fenced(job_id: str, token: str) -> sa.ColumnElement[bool]:
    return sa.and_(jobs.c.job_id == job_id, jobs.c.lease_token == token, jobs.c.status == "running")


RENEW = (
    jobs.update()
    .where(
        jobs.c.job_id == sa.bindparam("r_job"),
        jobs.c.lease_token == sa.bindparam("r_token"),
        jobs.c.status == "running",
    )
    .values(
        lease_until=sa.bindparam("r_lease_until"),
        steps_done=sa.bindparam("r_done"),
        steps_total=sa.bindparam("r_total"),
        progress=sa.bindparam("r_progress"),
        stage=sa.bindparam("r_stage"),
        last_step_at=sa.bindparam("r_now"),
    )
    .returning(jobs.c.cancel_requested)
)


async def renew(
    db: Database,
    claimed: Claimed,
    *,
    lease_seconds: float,
    steps_done: int,
    steps_total: int,
    stage: str,
) -> bool:
    """Record progress and extend the lease. Returns whether a cancel was requested."""
    now = time.time()
    params = {
        "r_job": claimed.job.job_id,
        "r_token": claimed.lease_token,
        "r_lease_until": now + lease_seconds,
        "r_done": steps_done,
        "r_total": steps_total,
        "r_progress": min(steps_done / steps_total, 1.0) if steps_total else 0.0,
        "r_stage": stage,
        "r_now": now,
    }
    row = await db.run_write(lambda conn: conn.execute(RENEW, params).first())
    if row is None:
        raise LeaseLost()
    return bool(row.cancel_requested)


async def complete(
    db: Database,
    claimed: Claimed,
    result: JobResult,
    *,
    after: Callable[[Connection], None] | None = None,
) -> None:
    """Mark the job succeeded, fenced by its lease; ``after`` runs SQL in the same transaction."""
    now = time.time()
    stmt = (
        jobs.update()
        .where(_fenced(claimed.job.job_id, claimed.lease_token))
        .values(
            status="succeeded",
            result=msgspec.json.encode(result),
            finished_at=now,
            progress=1.0,
            steps_done=jobs.c.steps_total,
            stage="succeeded",
            lease_token=None,
            lease_until=None,
            error=None,
        )
    )

    def finish(conn: Connection) -> None:
        if conn.execute(stmt).rowcount != 1:
            raise LeaseLost()
        _worker_done(conn, claimed.job.worker_id, now)
        if after is not None:
            after(conn)

    await db.run_write(finish)


def _worker_done(conn: Connection, worker_id: str | None, now: float) -> None:
    if worker_id is not None:
        conn.execute(
            workers.update()
            .where(workers.c.worker_id == worker_id)
            .values(jobs_done=workers.c.jobs_done + 1, current_job=None, heartbeat_at=now)
        )


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential retry delay: base, 2·base, 4·base, ... capped at ten minutes."""
    return min(base * 2 ** max(attempt - 1, 0), MAX_BACKOFF_SECONDS)


async def fail(
    db: Database, claimed: Claimed, error: str, *, retryable: bool, backoff_base: float
) -> str:
    """Record a failure: back to the queue after a delay while attempts remain, else failed.

    Returns the job's new status.
    """
    now = time.time()
    job = claimed.job
    retry = retryable and job.attempts < job.max_attempts
    values: dict[str, object] = {"lease_token": None, "lease_until": None, "error": error}
    if retry:
        values |= {
            "status": "queued",
            "run_after": now + backoff_seconds(job.attempts, backoff_base),
            "stage": f"retrying after attempt {job.attempts}: {error[:120]}",
            "worker_id": None,
        }
    else:
        values |= {"status": "failed", "finished_at": now, "stage": "failed"}
    stmt = jobs.update().where(_fenced(job.job_id, claimed.lease_token)).values(values)

    def record(conn: Connection) -> None:
        if conn.execute(stmt).rowcount != 1:
            raise LeaseLost()
        _worker_done(conn, job.worker_id, now)
        if retry:
            _notify(conn)

    await db.run_write(record)
    return "queued" if retry else "failed"


async def release(db: Database, claimed: Claimed) -> None:
    """Give a running job back to the queue (worker shutdown); the attempt is not counted."""
    stmt = (
        jobs.update()
        .where(_fenced(claimed.job.job_id, claimed.lease_token))
        .values(
            status="queued",
            attempts=jobs.c.attempts - 1,
            worker_id=None,
            lease_token=None,
            lease_until=None,
            steps_done=0,
            progress=0.0,
            stage="queued",
            run_after=time.time(),
        )
    )

    def give_back(conn: Connection) -> None:
        conn.execute(stmt)
        _worker_done(conn, claimed.job.worker_id, time.time())
        _notify(conn)

    await db.run_write(give_back)


async def finish_cancelled(db: Database, claimed: Claimed) -> None:
    """A running job stopped at a step because a cancel was requested."""
    now = time.time()
    stmt = (
        jobs.update()
        .where(_fenced(claimed.job.job_id, claimed.lease_token))
        .values(
            status="cancelled",
            finished_at=now,
            stage="cancelled",
            lease_token=None,
            lease_until=None,
        )
    )

    def stop(conn: Connection) -> None:
        conn.execute(stmt)
        _worker_done(conn, claimed.job.worker_id, now)

    await db.run_write(stop)


async def cancel(db: Database, job_id: str) -> Job:
    """Cancel a job: at once when queued; at its next step when running. Returns the job after."""
    now = time.time()

    def cancel_one(conn: Connection) -> Row | None:
        conn.execute(
            jobs.update()
            .where(jobs.c.job_id == job_id, jobs.c.status == "queued")
            .values(status="cancelled", finished_at=now, stage="cancelled")
        )
        conn.execute(
            jobs.update()
            .where(jobs.c.job_id == job_id, jobs.c.status == "running")
            .values(cancel_requested=True)
        )
        return conn.execute(JOB_BY_ID, {"job_id": job_id}).first()

    row = await db.run_write(cancel_one)
    if row is None:
        raise JobNotFound()
    return row_to_job(row)


# --- maintenance ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    requeued: int
    failed: int


async def sweep_expired_leases(db: Database, now: float | None = None) -> SweepResult:
    """Jobs whose worker vanished: back to the queue while attempts remain, else failed."""
    now = time.time() if now is None else now
    expired = sa.and_(jobs.c.status == "running", jobs.c.lease_until < now)
    # Every worker sweeps every second: look first (a reader, no lock) and write only when a
    # lease has really expired, so idle sweeps never compete with submissions for the lock.
    anything = sa.select(jobs.c.id).where(expired).limit(1)
    if await db.run_read(lambda conn: conn.execute(anything).first()) is None:
        return SweepResult(0, 0)

    def sweep(conn: Connection) -> SweepResult:
        requeued = conn.execute(
            jobs.update()
            .where(expired, jobs.c.attempts < jobs.c.max_attempts)
            .values(
                status="queued",
                worker_id=None,
                lease_token=None,
                lease_until=None,
                run_after=now,
                steps_done=0,
                progress=0.0,
                stage="queued (requeued: its worker stopped answering)",
            )
        )
        failed = conn.execute(
            jobs.update()
            .where(expired, jobs.c.attempts >= jobs.c.max_attempts)
            .values(
                status="failed",
                finished_at=now,
                lease_token=None,
                lease_until=None,
                stage="failed",
                error=sa.func.coalesce(jobs.c.error, "")
                + sa.literal(
                    "worker lost: its lease expired on every attempt "
                    "(the worker crashed or was killed)"
                ),
            )
        )
        return SweepResult(requeued.rowcount, failed.rowcount)

    return await db.run_write(sweep)


# --- deleting (DELETE /api/tasks, retention) -----------------------------------------------


async def delete_job(db: Database, job_id: str) -> Job | None:
    """Remove one job row whatever its status; the removed job (its files are the caller's
    to delete, outside the transaction), or None when there was none."""
    stmt = jobs.delete().where(jobs.c.job_id == job_id).returning(*jobs.c)
    row = await db.run_write(lambda conn: conn.execute(stmt).first())
    return None if row is None else row_to_job(row)


async def delete_finished_before(db: Database, cutoff: float, *, limit: int) -> list[Job]:
    """Remove up to ``limit`` finished jobs whose ``finished_at`` is before ``cutoff`` (epoch s),
    oldest first, in one short write transaction; returns them so their files can be deleted
    after it commits. Walks ``ix_jobs_finished``."""
    oldest = (
        sa.select(jobs.c.id)
        .where(jobs.c.status.in_(FINISHED_STATUSES), jobs.c.finished_at < cutoff)
        .order_by(jobs.c.finished_at)
        .limit(limit)
    )
    stmt = jobs.delete().where(jobs.c.id.in_(oldest)).returning(*jobs.c)
    rows = await db.run_write(lambda conn: conn.execute(stmt).all())
    return [row_to_job(r) for r in rows]


async def existing_job_ids(db: Database, job_ids: Sequence[str]) -> set[str]:
    """The ids among ``job_ids`` that still have a row (for sweeping orphaned output folders)."""
    if not job_ids:
        return set()
    stmt = sa.select(jobs.c.job_id).where(jobs.c.job_id.in_(list(job_ids)))
    return set(await db.run_read(lambda conn: conn.execute(stmt).scalars().all()))


# --- workers -------------------------------------------------------------------------------


async def register_worker(
    db: Database, *, worker_id: str, host: str, pid: int, engine: str, model_name: str
) -> None:
    now = time.time()

    def register(conn: Connection) -> None:
        conn.execute(workers.delete().where(workers.c.worker_id == worker_id))
        conn.execute(
            workers.insert().values(
                worker_id=worker_id,
                host=host,
                pid=pid,
                engine=engine,
                model_name=model_name,
                started_at=now,
                heartbeat_at=now,
            )
        )

    await db.run_write(register)


async def heartbeat(db: Database, worker_id: str) -> None:
    stmt = (
        workers.update()
        .where(workers.c.worker_id == worker_id)
        .values(heartbeat_at=time.time(), stopped_at=None)
    )
    await db.run_write(lambda conn: conn.execute(stmt))


async def unregister_worker(db: Database, worker_id: str) -> None:
    stmt = (
        workers.update()
        .where(workers.c.worker_id == worker_id)
        .values(stopped_at=time.time(), current_job=None)
    )
    await db.run_write(lambda conn: conn.execute(stmt))


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    host: str
    pid: int
    engine: str
    model_name: str
    heartbeat_at: float
    jobs_done: int
    current_job: str | None


async def list_workers(db: Database) -> list[WorkerInfo]:
    """Every worker that ever registered, oldest first (alive or not)."""
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(workers).order_by(workers.c.started_at))).all()
    return [_worker_info(r) for r in rows]


def _worker_info(r: Row) -> WorkerInfo:
    return WorkerInfo(
        r.worker_id,
        r.host,
        r.pid,
        r.engine,
        r.model_name,
        r.heartbeat_at,
        r.jobs_done,
        r.current_job,
    )


def _alive_query(within_seconds: float) -> sa.Select[Any]:
    return sa.select(workers).where(
        workers.c.heartbeat_at >= time.time() - within_seconds, workers.c.stopped_at.is_(None)
    )


def alive_workers_in(conn: Connection, *, within_seconds: float) -> list[WorkerInfo]:
    """Workers that sent a heartbeat recently and have not said goodbye."""
    return [_worker_info(r) for r in conn.execute(_alive_query(within_seconds)).all()]


async def alive_workers(conn: Any, *, within_seconds: float) -> list[WorkerInfo]:
    """``alive_workers_in`` on an open async transaction (``async with db.read() as conn``)."""
    return [_worker_info(r) for r in (await conn.execute(_alive_query(within_seconds))).all()]


# --- observing (metrics) ------------------------------------------------------------------


@dataclass(frozen=True)
class StartedJob:
    """Timing facts of one job that a worker started, for the metrics summaries."""

    engine: str | None
    status: str
    created_at: float
    started_at: float
    finished_at: float | None


async def recent_started_jobs(conn: AsyncConnection, *, limit: int) -> list[StartedJob]:
    """The ``limit`` most recently started jobs (running or finished), newest first."""
    stmt = (
        sa.select(
            jobs.c.engine, jobs.c.status, jobs.c.created_at, jobs.c.started_at, jobs.c.finished_at
        )
        .where(jobs.c.started_at.is_not(None))
        .order_by(jobs.c.started_at.desc())
        .limit(limit)
    )
    return [StartedJob(*row) for row in (await conn.execute(stmt)).all()]


async def unstopped_workers(conn: AsyncConnection, *, limit: int) -> list[WorkerInfo]:
    """Workers that never said goodbye, however old their heartbeat (a killed one shows its age)."""
    stmt = (
        sa.select(workers)
        .where(workers.c.stopped_at.is_(None))
        .order_by(workers.c.heartbeat_at.desc())
        .limit(limit)
    )
    return [_worker_info(r) for r in (await conn.execute(stmt)).all()]
