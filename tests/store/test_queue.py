"""The queue's statements on a real SQLite file: claim order, fencing, retries, sweeps, cancel."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from service.errors import JobNotFound, LeaseLost, QueueFull
from service.schemas import JobResult, ResultFile
from service.store import queue
from service.store.db import Database
from service.store.tables import jobs
from tests.conftest import make_request, submit

LEASE = 30.0


def a_result() -> JobResult:
    return JobResult(
        files=[ResultFile(path="x/0.wav", format="wav", seed=1, duration=2.0)],
        engine="synth",
        model_name="m",
    )


async def claim(db: Database, worker: str = "w1", lease: float = LEASE) -> queue.Claimed | None:
    return await queue.claim(db, worker_id=worker, engine="synth", lease_seconds=lease)


async def test_claim_order_is_priority_then_submission(db: Database) -> None:
    first = await submit(db)
    second = await submit(db)
    urgent = await submit(db, priority=5)
    order = [(await claim(db)).job.job_id for _ in range(3)]  # type: ignore[union-attr]
    assert order == [urgent.job.job_id, first.job.job_id, second.job.job_id]
    assert await claim(db) is None


async def test_claim_sets_lease_and_counts_attempt(db: Database) -> None:
    await submit(db)
    before = time.time()
    claimed = await claim(db)
    assert claimed is not None
    job = await queue.get_job(db, claimed.job.job_id)
    assert job.status == "running" and job.attempts == 1 and job.worker_id == "w1"
    async with db.read() as conn:
        lease_until = await conn.scalar(
            sa.select(jobs.c.lease_until).where(jobs.c.job_id == job.job_id)
        )
    assert before + LEASE <= lease_until <= time.time() + LEASE


async def test_queue_position_counts_jobs_ahead_in_claim_order(db: Database) -> None:
    a = (await submit(db)).job
    b = (await submit(db)).job
    c = (await submit(db, priority=1)).job
    async with db.read() as conn:
        positions = [await queue.queue_position(conn, j) for j in (a, b, c)]
    assert positions == [2, 3, 1]
    await claim(db)  # takes c
    a, b = await queue.get_job(db, a.job_id), await queue.get_job(db, b.job_id)
    c = await queue.get_job(db, c.job_id)
    async with db.read() as conn:
        positions = [await queue.queue_position(conn, j) for j in (a, b, c)]
    assert positions == [1, 2, 0]


async def test_stale_worker_cannot_renew_or_complete(db: Database) -> None:
    await submit(db)
    stale = await claim(db, "w-old", lease=0.01)
    assert stale is not None
    time.sleep(0.02)
    swept = await queue.sweep_expired_leases(db)
    assert swept == queue.SweepResult(requeued=1, failed=0)
    fresh = await claim(db, "w-new")
    assert fresh is not None and fresh.job.job_id == stale.job.job_id
    assert fresh.job.attempts == 2
    with pytest.raises(LeaseLost):
        await queue.renew(db, stale, lease_seconds=LEASE, steps_done=1, steps_total=2, stage="x")
    with pytest.raises(LeaseLost):
        await queue.complete(db, stale, a_result())
    with pytest.raises(LeaseLost):
        await queue.fail(db, stale, "boom", retryable=True, backoff_base=0)
    await queue.complete(db, fresh, a_result())
    job = await queue.get_job(db, fresh.job.job_id)
    assert job.status == "succeeded" and job.worker_id == "w-new"
    assert job.result is not None and job.result.files[0].path == "x/0.wav"


async def test_expired_lease_on_last_attempt_fails_with_reason(db: Database) -> None:
    await submit(db, max_attempts=1)
    claimed = await claim(db, lease=0.01)
    assert claimed is not None
    time.sleep(0.02)
    assert await queue.sweep_expired_leases(db) == queue.SweepResult(requeued=0, failed=1)
    job = await queue.get_job(db, claimed.job.job_id)
    assert job.status == "failed" and "lease expired" in (job.error or "")
    assert job.finished_at is not None


async def test_retryable_failure_backs_off_then_fails_for_good(db: Database) -> None:
    await submit(db, max_attempts=2)
    first = await claim(db)
    assert first is not None
    assert await queue.fail(db, first, "flaky", retryable=True, backoff_base=60) == "queued"
    assert await claim(db) is None  # still backing off
    async with db.write() as conn:
        await conn.execute(jobs.update().values(run_after=0))
    second = await claim(db)
    assert second is not None and second.job.attempts == 2
    assert await queue.fail(db, second, "flaky again", retryable=True, backoff_base=60) == "failed"
    job = await queue.get_job(db, second.job.job_id)
    assert job.status == "failed" and job.error == "flaky again"


async def test_deterministic_failure_is_not_retried(db: Database) -> None:
    await submit(db, max_attempts=3)
    claimed = await claim(db)
    assert claimed is not None
    assert await queue.fail(db, claimed, "bad audio", retryable=False, backoff_base=0) == "failed"
    assert (await queue.get_job(db, claimed.job.job_id)).attempts == 1


async def test_release_returns_job_without_counting_the_attempt(db: Database) -> None:
    await submit(db)
    claimed = await claim(db)
    assert claimed is not None
    await queue.release(db, claimed)
    job = await queue.get_job(db, claimed.job.job_id)
    assert job.status == "queued" and job.attempts == 0 and job.worker_id is None


async def test_cancel_queued_and_running(db: Database) -> None:
    queued = (await submit(db)).job
    running_job = (await submit(db, priority=1)).job
    claimed = await claim(db)
    assert claimed is not None and claimed.job.job_id == running_job.job_id
    assert (await queue.cancel(db, queued.job_id)).status == "cancelled"
    after = await queue.cancel(db, running_job.job_id)
    assert after.status == "running" and after.cancel_requested
    assert await queue.renew(
        db, claimed, lease_seconds=LEASE, steps_done=1, steps_total=2, stage="generating"
    )
    await queue.finish_cancelled(db, claimed)
    assert (await queue.get_job(db, running_job.job_id)).status == "cancelled"
    with pytest.raises(JobNotFound):
        await queue.cancel(db, "no-such-job")


async def test_queue_limit_refuses_without_writing(db: Database) -> None:
    for _ in range(2):
        await queue.enqueue(
            db, job_id=f"j{_}", request=make_request(), duration=2.0, queue_maxsize=2
        )
    with pytest.raises(QueueFull):
        await queue.enqueue(db, job_id="j3", request=make_request(), duration=2.0, queue_maxsize=2)
    assert await queue.counts_by_status(db) == {"queued": 2}


async def test_idempotency_key_returns_the_active_job(db: Database) -> None:
    one = await queue.enqueue(
        db, job_id="a", request=make_request(), duration=2.0, idempotency_key="k"
    )
    two = await queue.enqueue(
        db, job_id="b", request=make_request(), duration=2.0, idempotency_key="k"
    )
    assert one.created and not two.created and two.job.job_id == "a"
    assert await queue.counts_by_status(db) == {"queued": 1}


async def test_claim_and_position_queries_use_the_index(db: Database) -> None:
    """EXPLAIN QUERY PLAN: the claim walks ix_jobs_claim and never sorts in a temp b-tree."""
    if not db.is_sqlite:
        pytest.skip("SQLite's query planner; PostgreSQL picks plans by table statistics")
    async with db.read() as conn:
        plan = (
            await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE status = 'queued' "
                "AND run_after <= 1e12 ORDER BY priority DESC, id LIMIT 1"
            )
        ).all()
    text = " ".join(str(row[-1]) for row in plan)
    assert "ix_jobs_claim" in text and "TEMP B-TREE" not in text


async def test_position_at_submission_matches_the_claim_order(db: Database) -> None:
    """The position counted while inserting (in batches too) equals the one read later."""
    outcomes = await queue.enqueue_many(
        db,
        [
            queue.NewJob(job_id=f"b{i}", request=make_request(), duration=2.0, priority=p)
            for i, p in enumerate([0, 0, 3, 0, 3, 1])
        ],
    )
    jobs_in = [o for o in outcomes if isinstance(o, queue.Enqueued)]
    assert [e.position for e in jobs_in] == [1, 2, 1, 4, 2, 3]
    async with db.read() as conn:
        now = [
            await queue.queue_position(conn, await queue.get_job(db, e.job.job_id)) for e in jobs_in
        ]
    assert now == [4, 5, 1, 6, 2, 3]  # later, higher-priority arrivals moved ahead of them
