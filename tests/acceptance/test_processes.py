"""Real processes: workers sharing the queue, kill -9 mid-job, API restarts, ``songqueue up``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf
import sqlalchemy as sa

from service.config import Settings
from service.store import queue
from service.store.db import Database
from service.store.tables import jobs, workers
from tests.conftest import submit
from tests.processes import (
    api_process,
    finished_job,
    free_port,
    process_env,
    songqueue,
    stop,
    wait_http,
    wait_until,
)
from tests.store.test_queue import a_result

pytestmark = pytest.mark.slow
TIMED = "models.testing:TimedEngine"


def counts(db_url: str) -> dict[str, int]:
    engine = sa.create_engine(db_url.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status))
        result = {status: n for status, n in rows}
    engine.dispose()
    return result


def sync_rows(db_url: str, query: sa.Select) -> list[sa.Row]:
    engine = sa.create_engine(db_url.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    engine.dispose()
    return rows


async def test_two_worker_processes_share_500_jobs_without_double_claims(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    for _ in range(500):
        await submit(db, audio_duration=0.05, audio_format="wav")
    env = process_env(settings.home_path, SONGQUEUE_TEST_STEPS="1")
    procs = [
        songqueue(["worker", "--engine", TIMED], env, tmp_path / f"w{i}.log") for i in range(2)
    ]
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: counts(settings.database) == {"succeeded": 500},
            180,
            "500 jobs to succeed",
        )
    finally:
        for proc in procs:
            stop(proc)
    rows = sync_rows(settings.database, sa.select(jobs.c.attempts, jobs.c.worker_id))
    assert all(r.attempts == 1 for r in rows)  # a second claim would have counted an attempt
    done = sync_rows(settings.database, sa.select(workers.c.worker_id, workers.c.jobs_done))
    assert sum(r.jobs_done for r in done) == 500
    assert {r.worker_id for r in rows} == {r.worker_id for r in done}


async def test_worker_killed_mid_job_is_reclaimed_and_finished_once(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    job = (await submit(db, audio_duration=0.5, audio_format="wav")).job
    env = process_env(
        settings.home_path,
        SONGQUEUE_LEASE_SECONDS="2",
        SONGQUEUE_TEST_STEPS="20",
        SONGQUEUE_TEST_STEP_SECONDS="0.1",
    )
    first = songqueue(["worker", "--engine", TIMED], env, tmp_path / "first.log")

    def first_is_mid_job() -> bool:
        rows = sync_rows(settings.database, sa.select(jobs.c.steps_done, jobs.c.status))
        return rows[0].status == "running" and rows[0].steps_done >= 1

    await asyncio.to_thread(wait_until, first_is_mid_job, 30, "the first worker's first step")
    stop(first, signal.SIGKILL)
    killed_at = time.monotonic()
    second = songqueue(["worker", "--engine", TIMED], env, tmp_path / "second.log")
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: counts(settings.database) == {"succeeded": 1},
            60,
            "the job to be re-claimed and finished",
        )
    finally:
        stop(second)
    assert time.monotonic() - killed_at >= 1.0  # not before the 2 s lease could expire
    after = await queue.get_job(db, job.job_id)
    assert after.attempts == 2 and after.result is not None
    done = {
        r.worker_id: r.jobs_done
        for r in sync_rows(settings.database, sa.select(workers.c.worker_id, workers.c.jobs_done))
    }
    assert sorted(done.values()) == [0, 1]  # finished exactly once, by the second worker
    assert done[after.worker_id] == 1
    assert (settings.outputs_dir / after.result.files[0].path).is_file()


async def test_api_restart_loses_nothing(settings: Settings, db: Database, tmp_path: Path) -> None:
    states = {}
    for status in ("succeeded", "failed", "running", "cancelled", "queued"):
        states[(await submit(db)).job.job_id] = status
    claimed = [
        await queue.claim(db, worker_id="w", engine="timed", lease_seconds=60) for _ in range(3)
    ]  # the first three, in submission order
    done, failed, _running = claimed
    await queue.complete(db, done, a_result())  # type: ignore[arg-type]
    await queue.fail(db, failed, "boom", retryable=False, backoff_base=0)  # type: ignore[arg-type]
    await queue.cancel(db, list(states)[3])
    log = tmp_path / "api.log"
    acknowledged: list[str] = []
    with api_process(settings.home_path, log) as base:
        before = {j: httpx.get(f"{base}/v1/jobs/{j}").json()["status"] for j in states}

        async def burst() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                for _ in range(40):
                    r = await client.post(
                        "/v1/music/generate", json={"caption": "x", "audio_duration": 1}
                    )
                    assert r.status_code == 200
                    acknowledged.append(r.json()["job_id"])

        await burst()
    # the API was killed with SIGKILL; a new one must see every job exactly as before
    with api_process(settings.home_path, log) as base:
        after = {j: httpx.get(f"{base}/v1/jobs/{j}").json()["status"] for j in states}
        for job_id in acknowledged:
            assert httpx.get(f"{base}/v1/jobs/{job_id}").status_code == 200
    assert before == after == {j: ("failed" if s == "cancelled" else s) for j, s in states.items()}


def test_up_serves_the_readme_flow_and_stops_cleanly(tmp_path: Path) -> None:
    """The README's curl example against ``songqueue up``: submit, poll, download, play."""
    home = tmp_path / "home"
    port = free_port()
    log = tmp_path / "up.log"
    up = songqueue(["up", "--port", str(port), "--engine", "synth"], process_env(home), log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base, timeout=60)
        body = {
            "caption": "upbeat funk with bass and drums",
            "audio_duration": 12,
            "batch_size": 1,
            "audio_format": "wav",
        }
        job_id = httpx.post(f"{base}/v1/music/generate", json=body).json()["job_id"]
        job = finished_job(base, job_id, 60)
        assert job["status"] == "succeeded", job
        audio = httpx.get(base + job["result"]["first_audio_path"])
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        out = tmp_path / "song.wav"
        out.write_bytes(audio.content)
        assert sf.info(str(out)).frames == 12 * 44100
    finally:
        code = stop(up, signal.SIGTERM, timeout=40)
    assert code == 0, log.read_text()[-2000:]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/health", timeout=1)
    leftover = subprocess.run(["pgrep", "-f", "--", f"--port {port}"], capture_output=True)
    assert leftover.returncode == 1, leftover.stdout  # no API or worker outlived `up`
