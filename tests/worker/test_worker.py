"""The worker loop in-process: results and statistics, cancel, graceful stop, failures, retries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import soundfile as sf

from models.engine import EngineInputError, GenerationSpec, StepCallback, Track, no_progress
from models.testing import TimedEngine
from service.config import Settings
from service.store import queue
from service.store.db import Database
from service.store.eta import load_timing_table
from service.worker import Worker
from tests.conftest import submit

WAIT = 10.0  # seconds: an upper bound for conditions that take milliseconds


async def wait_for_status(db: Database, job_id: str, *statuses: str) -> str:
    async def poll() -> str:
        while (job := await queue.get_job(db, job_id)).status not in statuses:
            await asyncio.sleep(0.01)
        return job.status

    return await asyncio.wait_for(poll(), WAIT)


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        worker.stop()
        await asyncio.wait_for(task, WAIT)


async def test_jobs_run_to_files_with_statistics(settings: Settings, db: Database) -> None:
    ids = [
        (await submit(db, audio_duration=1.5, batch_size=2, audio_format="wav")).job.job_id
        for _ in range(3)
    ]
    worker = Worker(settings, db, TimedEngine(steps=3), run_until_empty=True)
    await asyncio.wait_for(worker.run(), WAIT)
    for job_id in ids:
        job = await queue.get_job(db, job_id)
        assert job.status == "succeeded" and job.progress == 1.0
        assert job.steps_done == job.steps_total == 6
        assert job.result is not None and len(job.result.files) == 2
        for item in job.result.files:
            info = sf.info(str(settings.outputs_dir / item.path))
            assert info.frames == round(1.5 * 44100) and info.channels == 2
        assert job.result.seed_value == "0,1"
    table = await db.run_read(load_timing_table)
    assert table.estimate("timed", "text2music", 1.5, 2) is not None


async def test_new_work_is_noticed_quickly(settings: Settings, db: Database) -> None:
    worker = Worker(settings, db, TimedEngine(steps=1))
    async with running(worker):
        await asyncio.sleep(0.3)  # the worker is idle, waiting on data_version
        job = (await submit(db)).job
        loop = asyncio.get_running_loop()
        submitted = loop.time()
        await asyncio.wait_for(worker.events.claimed.wait(), WAIT)
        assert loop.time() - submitted < 1.0  # the claim interval is the worst case
        await wait_for_status(db, job.job_id, "succeeded")


async def test_cancel_stops_a_running_job_at_its_next_step(
    settings: Settings, db: Database
) -> None:
    job = (await submit(db)).job
    worker = Worker(settings, db, TimedEngine(steps=200, step_seconds=0.02))
    async with running(worker):
        await asyncio.wait_for(worker.events.step.wait(), WAIT)
        await queue.cancel(db, job.job_id)
        assert await wait_for_status(db, job.job_id, "cancelled", "succeeded") == "cancelled"
    assert (await queue.get_job(db, job.job_id)).steps_done < 200


async def test_stop_returns_the_running_job_to_the_queue(settings: Settings, db: Database) -> None:
    job = (await submit(db)).job
    worker = Worker(settings, db, TimedEngine(steps=200, step_seconds=0.02))
    async with running(worker):
        await asyncio.wait_for(worker.events.step.wait(), WAIT)
    after = await queue.get_job(db, job.job_id)
    assert after.status == "queued" and after.attempts == 0 and after.worker_id is None


class FlakyEngine(TimedEngine):
    """Fails with a transient error the first ``failures`` times."""

    def __init__(self, failures: int) -> None:
        super().__init__(steps=1)
        self.failures = failures

    def text2music(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("CUDA hiccup")
        return super().text2music(spec, on_step)


async def test_transient_failures_are_retried(settings: Settings, db: Database) -> None:
    settings.retry_backoff_seconds = 0.0
    job = (await submit(db, max_attempts=3)).job
    worker = Worker(settings, db, FlakyEngine(failures=2), run_until_empty=True)
    await asyncio.wait_for(worker.run(), WAIT)
    after = await queue.get_job(db, job.job_id)
    assert after.status == "succeeded" and after.attempts == 3


async def test_transient_failures_give_up_after_max_attempts(
    settings: Settings, db: Database
) -> None:
    settings.retry_backoff_seconds = 0.0
    job = (await submit(db, max_attempts=2)).job
    worker = Worker(settings, db, FlakyEngine(failures=5), run_until_empty=True)
    await asyncio.wait_for(worker.run(), WAIT)
    after = await queue.get_job(db, job.job_id)
    assert after.status == "failed" and after.attempts == 2
    assert after.error is not None and after.error.startswith("RuntimeError: CUDA hiccup")


class BadInputEngine(TimedEngine):
    def text2music(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        raise EngineInputError("lyrics line 3 has no pronounceable words")


async def test_input_errors_fail_at_once_with_a_readable_reason(
    settings: Settings, db: Database
) -> None:
    job = (await submit(db, max_attempts=3)).job
    await asyncio.wait_for(Worker(settings, db, BadInputEngine(), run_until_empty=True).run(), WAIT)
    after = await queue.get_job(db, job.job_id)
    assert after.status == "failed" and after.attempts == 1
    assert after.error == "lyrics line 3 has no pronounceable words"


async def test_garbage_source_fails_without_retry(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    garbage = tmp_path / "song.wav"
    garbage.write_bytes(b"RIFF but not really audio" * 10)
    job = (await submit(db, task_type="repaint", src_audio_path=str(garbage))).job
    await asyncio.wait_for(
        Worker(settings, db, TimedEngine(steps=1), run_until_empty=True).run(), WAIT
    )
    after = await queue.get_job(db, job.job_id)
    assert after.status == "failed" and after.attempts == 1
    assert "not a readable audio file" in (after.error or "")


async def test_final_writes_wait_out_a_busy_database() -> None:
    from service.store.db import DatabaseBusy
    from service.worker import while_busy

    calls = 0

    async def flaky_write() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise DatabaseBusy("database is locked")
        return "written"

    assert await while_busy(flaky_write) == "written" and calls == 3
