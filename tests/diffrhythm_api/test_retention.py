"""Retention: old finished jobs and their files are removed; active and recent ones stay.

The jobs here are submitted as ACE-Step jobs (the store default): retention is the same for
every API."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from models.audio import write_audio
from models.engine import Audio
from service import retention
from service.config import Settings, load_settings
from service.schemas import JobResult, ResultFile
from service.store import queue
from service.store.db import Database
from service.store.migrate import upgrade
from tests.conftest import submit
from tests.diffrhythm_api.conftest import run_server

HOUR = 3600.0
WAIT_TIMEOUT = 10.0  # seconds for a background sweep to happen


async def _succeeded(db: Database, settings: Settings, **fields: object) -> str:
    """A job that ran and wrote a file, as a worker would leave it."""
    job = (await submit(db, **fields)).job
    claimed = await queue.claim(db, worker_id="w1", engine="timed", lease_seconds=60)
    assert claimed is not None and claimed.job.job_id == job.job_id
    out = settings.outputs_dir / job.job_id
    out.mkdir(parents=True)
    tone = np.zeros((2, 4410), dtype=np.float32)
    write_audio(Audio(tone, 44100), out / "0-1.wav", "wav")
    result = JobResult(
        files=[ResultFile(path=f"{job.job_id}/0-1.wav", format="wav", seed=1, duration=0.1)],
        engine="timed",
        model_name="timed",
    )
    await queue.complete(db, claimed, result)
    return job.job_id


async def _failed(db: Database) -> str:
    job = (await submit(db)).job
    claimed = await queue.claim(db, worker_id="w1", engine="timed", lease_seconds=60)
    assert claimed is not None
    await queue.fail(db, claimed, "boom", retryable=False, backoff_base=0.0)
    return job.job_id


async def _cancelled(db: Database) -> str:
    job = (await submit(db)).job
    await queue.cancel(db, job.job_id)
    return job.job_id


def _upload(settings: Settings, name: str) -> Path:
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    path = settings.uploads_dir / name
    write_audio(Audio(np.zeros((2, 441), dtype=np.float32), 44100), path, "wav")
    return path


def _orphan(settings: Settings, mtime: float) -> Path:
    folder = settings.outputs_dir / str(uuid.uuid4())
    folder.mkdir(parents=True)
    (folder / "0-1.wav").write_bytes(b"RIFF")
    os.utime(folder, (mtime, mtime))
    return folder


async def test_old_finished_jobs_and_files_go(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    upload = _upload(settings, "reference_old.wav")
    elsewhere = tmp_path / "source_named_by_path.wav"  # not an upload: never deleted
    write_audio(Audio(np.zeros((2, 441), dtype=np.float32), 44100), elsewhere, "wav")
    old_ok = await _succeeded(db, settings, reference_audio_path=str(upload))
    old_cover = await _succeeded(db, settings, task_type="cover", src_audio_path=str(elsewhere))
    old_failed = await _failed(db)
    old_cancelled = await _cancelled(db)
    cutoff = time.time()
    recent_upload = _upload(settings, "reference_recent.wav")
    recent = await _succeeded(db, settings, reference_audio_path=str(recent_upload))
    running = (await submit(db)).job.job_id
    assert await queue.claim(db, worker_id="w2", engine="timed", lease_seconds=60) is not None
    queued = (await submit(db)).job.job_id
    old_orphan = _orphan(settings, cutoff - 10)
    new_orphan = _orphan(settings, cutoff + 10)

    result = await retention.sweep_retention(db, settings, now=cutoff + 24 * HOUR)

    assert result.jobs == 4
    assert result.orphans == 1
    assert result.paths == 3  # two output folders and one upload
    left = await queue.existing_job_ids(
        db, [old_ok, old_cover, old_failed, old_cancelled, recent, running, queued]
    )
    assert left == {recent, running, queued}
    assert not (settings.outputs_dir / old_ok).exists()
    assert not (settings.outputs_dir / old_cover).exists()
    assert not upload.exists()
    assert elsewhere.exists()
    assert (settings.outputs_dir / recent / "0-1.wav").is_file()
    assert recent_upload.exists()
    assert not old_orphan.exists() and new_orphan.exists()
    assert (await queue.get_job(db, running)).status == "running"
    assert (await queue.get_job(db, queued)).status == "queued"

    again = await retention.sweep_retention(db, settings, now=cutoff + 24 * HOUR)
    assert again == retention.RetentionResult(0, 0, 0)


async def test_zero_hours_keeps_everything(db: Database, tmp_path: Path) -> None:
    settings = load_settings(
        environ={}, env_file=None, home=str(tmp_path / "home"), retention_hours=0
    )
    job_id = await _failed(db)
    result = await retention.sweep_retention(db, settings, now=time.time() + 1000 * HOUR)
    assert result == retention.RetentionResult(0, 0, 0)
    assert await queue.existing_job_ids(db, [job_id]) == {job_id}


async def test_rows_leave_in_bounded_batches(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write transaction removes at most BATCH_SIZE rows; files go after each one."""
    monkeypatch.setattr(retention, "BATCH_SIZE", 3)
    ids = [await _succeeded(db, settings) for _ in range(7)]
    calls: list[tuple[int, int, int]] = []  # (limit, rows removed, folders still on disk)
    real = queue.delete_finished_before

    async def spy(db: Database, cutoff: float, *, limit: int) -> list:
        removed = await real(db, cutoff, limit=limit)
        on_disk = sum((settings.outputs_dir / j.job_id).exists() for j in removed)
        calls.append((limit, len(removed), on_disk))
        return removed

    monkeypatch.setattr(queue, "delete_finished_before", spy)
    result = await retention.sweep_retention(db, settings, now=time.time() + 25 * HOUR)
    assert result.jobs == 7
    assert [c[:2] for c in calls] == [(3, 3), (3, 3), (3, 1)]
    assert all(on_disk == rows for _, rows, on_disk in calls)  # deleted after the commit
    assert await queue.existing_job_ids(db, ids) == set()
    assert not any((settings.outputs_dir / i).exists() for i in ids)


async def test_loop_sweeps_in_the_background(db: Database, tmp_path: Path) -> None:
    settings = load_settings(
        environ={}, env_file=None, home=str(tmp_path / "home"), retention_hours=0.0001
    )  # 0.36 s
    job_id = await _succeeded(db, settings)
    task = asyncio.create_task(retention.retention_loop(db, settings, interval=0.05))
    try:
        deadline = time.monotonic() + WAIT_TIMEOUT
        while await queue.existing_job_ids(db, [job_id]):
            assert time.monotonic() < deadline, "the loop never removed the old job"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not (settings.outputs_dir / job_id).exists()


def test_api_lifespan_runs_the_sweep(tmp_path: Path) -> None:
    """The API process sweeps at start-up (then every few minutes) without a request."""
    settings = load_settings(
        environ={}, env_file=None, home=str(tmp_path / "home"), retention_hours=0.0001
    )
    upgrade(settings.database)

    async def make_old_job() -> str:
        from service.store.db import open_database

        database = open_database(settings.database)
        try:
            job_id = await _succeeded(database, settings)
            job = await queue.get_job(database, job_id)
        finally:
            await database.dispose()
        await asyncio.sleep(max(0.0, job.finished_at + 0.5 - time.time()))  # older than 0.36 s
        return job_id

    job_id = asyncio.run(make_old_job())
    from models.testing import TimedEngine

    with run_server(settings.home_path, TimedEngine(), retention_hours=0.0001) as server:
        deadline = time.monotonic() + WAIT_TIMEOUT
        while server.client.get(f"/api/status/{job_id}").status_code != 404:
            assert time.monotonic() < deadline, "the lifespan never swept the old job"
            time.sleep(0.05)
    assert not (settings.outputs_dir / job_id).exists()
