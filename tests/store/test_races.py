"""Races between separate connections (as between processes): cancel/claim, idempotency."""

from __future__ import annotations

import asyncio

from service.config import Settings
from service.store import queue
from service.store.db import Database, open_database
from tests.conftest import make_request, submit

ROUNDS = 30


async def test_cancel_racing_claim_ends_in_exactly_one_state(
    db: Database, settings: Settings
) -> None:
    other = open_database(settings.database)  # a second writer, like another process
    try:
        for _ in range(ROUNDS):
            job = (await submit(db)).job
            claimed, after_cancel = await asyncio.gather(
                queue.claim(other, worker_id="w", engine="synth", lease_seconds=30),
                queue.cancel(db, job.job_id),
            )
            final = await queue.get_job(db, job.job_id)
            if claimed is None:
                assert final.status == "cancelled" and after_cancel.status == "cancelled"
            else:
                # the claim won: the job runs, and the cancel became a request it will see
                assert final.status == "running" and final.cancel_requested
                assert await queue.renew(
                    other, claimed, lease_seconds=30, steps_done=1, steps_total=2, stage="x"
                )
                await queue.finish_cancelled(other, claimed)
                assert (await queue.get_job(db, job.job_id)).status == "cancelled"
    finally:
        await other.dispose()


async def test_concurrent_duplicate_submissions_make_one_job(
    db: Database, settings: Settings
) -> None:
    connections = [open_database(settings.database) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(
                queue.enqueue(
                    connections[i % 4],
                    job_id=f"job-{i}",
                    request=make_request(),
                    duration=2.0,
                    idempotency_key="same-key",
                )
                for i in range(20)
            )
        )
    finally:
        for conn in connections:
            await conn.dispose()
    assert sum(r.created for r in results) == 1
    assert len({r.job.job_id for r in results}) == 1
    assert await queue.counts_by_status(db) == {"queued": 1}
