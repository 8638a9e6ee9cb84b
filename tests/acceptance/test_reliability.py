"""Crash and contention promises, proven on real processes (spec/job-queue.md §4)."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from service.config import Settings
from service.store import queue
from service.store.db import Database
from tests.conftest import submit
from tests.processes import (
    api_process,
    free_port,
    process_env,
    songqueue,
    stop,
    wait_http,
    wait_until,
)

pytestmark = pytest.mark.slow
TIMED = "models.testing:TimedEngine"


def test_api_killed_mid_burst_keeps_every_acknowledged_job(
    settings: Settings, tmp_path: Path
) -> None:
    from service.store.migrate import upgrade

    upgrade(settings.database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = songqueue(
        ["serve", "--port", str(port)], process_env(settings.home_path), tmp_path / "api.log"
    )
    acknowledged: list[str] = []
    wait_http(base)

    async def burst() -> None:
        async def client_loop() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                while True:
                    try:
                        r = await client.post(
                            "/v1/music/generate", json={"caption": "burst", "audio_duration": 1}
                        )
                    except httpx.HTTPError:
                        return  # the server died under us
                    if r.status_code == 200:
                        acknowledged.append(r.json()["job_id"])

        await asyncio.gather(*(client_loop() for _ in range(8)))

    def kill_mid_burst() -> None:
        wait_until(lambda: len(acknowledged) >= 30, 60, "30 acknowledged submissions")
        api.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_mid_burst)
    killer.start()
    asyncio.run(burst())
    killer.join()
    api.wait(10)
    assert len(acknowledged) > 20
    with api_process(settings.home_path, tmp_path / "api2.log") as base2:
        missing = [j for j in acknowledged if httpx.get(f"{base2}/v1/jobs/{j}").status_code != 200]
    assert missing == []


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from models.audio import write_audio
    from models.engine import Audio
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal((2, 44100 * 60))).astype(np.float32)
    print("ready", flush=True)
    while True:
        write_audio(Audio(samples, 44100), Path(sys.argv[1]), "flac")
""")


def test_killed_while_writing_never_leaves_a_truncated_file(tmp_path: Path) -> None:
    """SIGKILL a process in the middle of encoding, many times: the result name holds a
    complete file or nothing (write to a temporary name, then rename)."""
    dest = tmp_path / "song.flac"
    rng = random.Random(1)
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(dest)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if dest.exists():
            info = sf.info(str(dest))
            assert info.frames == 44100 * 60  # complete, never truncated
            data, _ = sf.read(str(dest))
            assert len(data) == 44100 * 60


async def test_sigterm_drains_a_worker_and_requeues_its_job(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    job = (await submit(db)).job
    env = process_env(
        settings.home_path, SONGQUEUE_TEST_STEPS="200", SONGQUEUE_TEST_STEP_SECONDS="0.05"
    )
    worker = songqueue(["worker", "--engine", TIMED], env, tmp_path / "worker.log")

    async def running() -> None:
        while (await queue.get_job(db, job.job_id)).steps_done < 1:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(running(), 30)
    t0 = time.monotonic()
    assert stop(worker, signal.SIGTERM, timeout=15) == 0
    assert time.monotonic() - t0 < 5  # stopped at the next step, not at the end of the job
    after = await queue.get_job(db, job.job_id)
    assert after.status == "queued" and after.attempts == 0


@pytest.mark.parametrize(("workers", "jobs"), [(4, 2000)])
async def test_many_workers_never_claim_a_job_twice(
    settings: Settings, db: Database, tmp_path: Path, workers: int, jobs: int
) -> None:
    for _ in range(jobs):
        await submit(db, audio_duration=0.02, audio_format="wav")
    # NORMAL: this test is about claim exclusivity, not power-loss durability
    env = process_env(
        settings.home_path, SONGQUEUE_TEST_STEPS="1", SONGQUEUE_SQLITE_SYNCHRONOUS="NORMAL"
    )
    procs = [
        songqueue(["worker", "--engine", TIMED], env, tmp_path / f"w{i}.log")
        for i in range(workers)
    ]

    async def done() -> None:
        while await queue.counts_by_status(db) != {"succeeded": jobs}:
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(done(), 600)
    finally:
        for proc in procs:
            stop(proc)
    finished = await queue.list_jobs(db, limit=jobs + 1)
    assert len(finished) == jobs and {j.attempts for j in finished} == {1}
    registered = await queue.list_workers(db)
    assert sum(w.jobs_done for w in registered) == jobs


def test_locked_database_gives_503_with_retry_after(settings: Settings, tmp_path: Path) -> None:
    from service.store.migrate import upgrade

    upgrade(settings.database)
    db_file = settings.home_path / "songqueue.db"
    with api_process(
        settings.home_path, tmp_path / "api.log", SONGQUEUE_BUSY_TIMEOUT_MS="300"
    ) as base:
        holder = sqlite3.connect(db_file, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            r = httpx.post(f"{base}/v1/music/generate", json={"caption": "x"}, timeout=10)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1" and "detail" in r.json()
        finally:
            holder.execute("ROLLBACK")
        # held for less than busy_timeout: the request waits and succeeds
        holder.execute("BEGIN IMMEDIATE")
        threading.Timer(0.1, lambda: holder.execute("ROLLBACK")).start()
        ok = httpx.post(f"{base}/v1/music/generate", json={"caption": "x"}, timeout=10)
        assert ok.status_code == 200
        jobs = httpx.get(f"{base}/v1/jobs/{ok.json()['job_id']}").json()
        assert jobs["status"] == "queued"
    count = sqlite3.connect(db_file).execute("SELECT count(*) FROM jobs").fetchone()[0]
    assert count == 1  # the refused request wrote nothing


def test_idempotency_key_over_http(settings: Settings, tmp_path: Path) -> None:
    from service.store.migrate import upgrade

    upgrade(settings.database)
    with api_process(settings.home_path, tmp_path / "api.log") as base:

        async def twenty() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            "/v1/music/generate",
                            json={"caption": "once"},
                            headers={"Idempotency-Key": "abc-123"},
                        )
                        for _ in range(20)
                    )
                )

        responses = asyncio.run(twenty())
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["job_id"] for r in responses}) == 1
