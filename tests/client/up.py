"""``songqueue up`` in a subprocess for client, metrics and browser tests.

The worker runs ``models.testing:TimedEngine``, whose steps take a set time, so a test can
watch a job queue, run and finish without guessing how fast the machine is.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.processes import free_port, process_env, songqueue, stop, wait_http, wait_until

TIMED = "models.testing:TimedEngine"
START_TIMEOUT = 60.0  # seconds for `up` to migrate and answer /health with a worker
JOB_TIMEOUT = 30.0  # seconds for one small job


@dataclass
class Up:
    """A running ``songqueue up``: its URL, key and data directory."""

    base: str
    home: Path
    api_key: str | None
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.headers, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, headers=self.headers, timeout=10, **kwargs)

    def job(self, job_id: str) -> dict[str, Any]:
        res = self.get(f"/v1/jobs/{job_id}")
        assert res.status_code == 200, res.text
        return res.json()

    def submit(self, **fields: Any) -> str:
        body = {"caption": "test tone", "audio_duration": 1, "batch_size": 1} | fields
        res = self.post("/v1/music/generate", json=body)
        assert res.status_code == 200, res.text
        return res.json()["job_id"]

    def wait_job(self, job_id: str, *statuses: str) -> dict[str, Any]:
        """Poll until the job reaches one of ``statuses`` (default: finished)."""
        wanted = statuses or ("succeeded", "failed")
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.job(job_id))
            return seen["status"] in wanted

        wait_until(reached, JOB_TIMEOUT, f"job {job_id} to be {'/'.join(wanted)}")
        return seen


@contextmanager
def songqueue_up(
    home: Path,
    *,
    api_key: str | None = None,
    steps: int = 4,
    step_seconds: float = 0.05,
    engine: str = TIMED,
) -> Iterator[Up]:
    """``songqueue up`` with one worker (TimedEngine unless told); SIGTERM at the end."""
    port = free_port()
    env = {"SONGQUEUE_TEST_STEPS": str(steps), "SONGQUEUE_TEST_STEP_SECONDS": str(step_seconds)}
    if api_key is not None:
        env["SONGQUEUE_API_KEY"] = api_key
    log = home.parent / f"{home.name}-up.log"
    proc = songqueue(
        ["up", "--port", str(port), "--engine", engine], process_env(home, **env), log
    )
    up = Up(f"http://127.0.0.1:{port}", home, api_key, log)
    try:
        wait_http(up.base, timeout=START_TIMEOUT)
        wait_until(
            lambda: up.get("/health").json()["data"]["models_initialized"],
            START_TIMEOUT,
            "the worker to register",
        )
        yield up
    finally:
        stop(proc, signal.SIGTERM, timeout=40)
