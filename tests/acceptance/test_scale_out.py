"""Scale-out: one API and two workers that share nothing but PostgreSQL and an S3 store.

Each process has its own data directory, so every file the API serves was written by a worker
on "another host" and travelled through the object store (moto's S3 server on loopback).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from service.config import load_settings
from service.retention import sweep_retention
from service.storage import open_object_store
from service.store import queue
from service.store.db import open_database
from tests import pg
from tests.processes import free_port, process_env, songqueue, stop, wait_http, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
JOBS = 200
BUCKET = "songqueue-test"
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    """moto's S3 server on a free loopback port, with an empty bucket."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**process_env(tmp_path), **AWS},
    )
    endpoint = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        try:
            return httpx.get(endpoint, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_until(answering, 30, "moto's S3 server")
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop(proc, signal.SIGKILL)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    template = request.getfixturevalue("pg_template")
    name = pg.new_name()
    pg.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield pg.database_url(name)
    pg.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_api_and_two_workers_share_postgres_and_s3(
    tmp_path: Path, s3_endpoint: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in AWS.items():  # boto3 in this process (the retention sweep below)
        monkeypatch.setenv(name, value)
    shared = {
        "SONGQUEUE_DATABASE_URL": pg_url,
        "SONGQUEUE_S3_BUCKET": BUCKET,
        "SONGQUEUE_S3_ENDPOINT_URL": s3_endpoint,
        "SONGQUEUE_QUEUE_MAXSIZE": "1000",
        "SONGQUEUE_TEST_STEPS": "1",
        **AWS,
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = songqueue(
        ["serve", "--port", str(port)],
        process_env(tmp_path / "api", **shared),
        tmp_path / "api.log",
    )
    workers = [
        songqueue(
            ["worker", "--engine", "models.testing:TimedEngine"],
            process_env(tmp_path / f"host{i}", **shared),
            tmp_path / f"worker{i}.log",
        )
        for i in range(2)
    ]
    try:
        wait_http(base)
        with httpx.Client(base_url=base, timeout=30) as client:
            ids = [
                client.post(
                    "/v1/music/generate",
                    json={
                        "caption": f"song {n}",
                        "audio_duration": 0.2,
                        "batch_size": 1,
                        "audio_format": "wav",
                    },
                ).json()["job_id"]
                for n in range(JOBS)
            ]

            def all_done() -> bool:
                return all(
                    client.get(f"/v1/jobs/{j}").json()["status"] == "succeeded" for j in ids[-5:]
                ) and asyncio.run(_counts(pg_url)) == {"succeeded": JOBS}

            wait_until(all_done, 240, f"{JOBS} jobs to succeed")
            stats = client.get("/v1/stats").json()["data"]
            assert stats["workers"] == 2 and stats["jobs"]["succeeded"] == JOBS
            assert sum(w["jobs_done"] for w in stats["worker_list"]) == JOBS
            for job_id in ids:
                job = client.get(f"/v1/jobs/{job_id}").json()
                audio = client.get(job["result"]["first_audio_path"])
                assert audio.status_code == 200, (job_id, audio.text)
                out = tmp_path / "download.wav"
                out.write_bytes(audio.content)
                assert sf.info(str(out)).frames == round(0.2 * 44100)
    finally:
        for proc in (api, *workers):
            stop(proc)
    rows = asyncio.run(_attempts_and_done(pg_url))
    assert rows["attempts"] == {1}  # every job claimed exactly once
    assert rows["jobs_done"] == JOBS and rows["workers"] == 2
    # retention removes the bucket's objects too, not only local files
    swept = asyncio.run(_sweep_everything(pg_url, tmp_path / "api", s3_endpoint))
    assert swept == JOBS
    assert _object_count(s3_endpoint) == 0
    # each worker wrote only the files of its own jobs, into its own data directory
    written = [len(list((tmp_path / f"host{i}" / "outputs").rglob("*.wav"))) for i in range(2)]
    assert sorted(written) == sorted(rows["per_worker"])  # type: ignore[arg-type]


async def _sweep_everything(url: str, home: Path, endpoint: str) -> int:
    settings = load_settings(
        environ=AWS,
        env_file=None,
        home=str(home),
        database_url=url,
        s3_bucket=BUCKET,
        s3_endpoint_url=endpoint,
    )
    db = open_database(url)
    try:
        result = await sweep_retention(
            db, settings, now=time.time() + 10 * 86400, store=open_object_store(settings)
        )
    finally:
        await db.dispose()
    return result.jobs


def _object_count(endpoint: str) -> int:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return int(client.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0))


async def _counts(url: str) -> dict[str, int]:
    db = open_database(url)
    try:
        return await queue.counts_by_status(db)
    finally:
        await db.dispose()


async def _attempts_and_done(url: str) -> dict[str, object]:
    db = open_database(url)
    try:
        jobs = await queue.list_jobs(db, limit=10_000)
        async with db.read() as conn:
            alive = await queue.alive_workers(conn, within_seconds=3600)
        registered = await queue.list_workers(db)
    finally:
        await db.dispose()
    by_worker = [sum(1 for j in jobs if j.worker_id == w.worker_id) for w in registered]
    return {
        "attempts": {j.attempts for j in jobs},
        "jobs_done": sum(w.jobs_done for w in registered),
        "workers": len(registered),
        "per_worker": by_worker,
        "alive": len(alive),
    }
