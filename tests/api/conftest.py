"""A real songqueue over HTTP: uvicorn on a free port in a thread, and a worker running the
synth engine in another thread (its own event loop), on a fresh data directory.

Tests talk to it with httpx only. Jobs are kept tiny (2-4 s of audio, batch 1-2), so each one
takes well under a second; waits poll a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest

from models.audio import write_audio
from models.engine import Audio
from service.config import Settings
from tests.harness import START_TIMEOUT, WorkerThread, serving, wait_for

JOB_TIMEOUT = 30.0  # seconds for one tiny job to finish, generous for 2 slow cores


@dataclass
class Server:
    """One running songqueue, with the calls ACE-Step clients make as methods."""

    settings: Settings
    base: str
    client: httpx.Client
    worker: WorkerThread | None = None
    headers: dict[str, str] = field(default_factory=dict)  # sent by the helper methods

    wait_for = staticmethod(wait_for)

    @property
    def uploads(self) -> list[Path]:
        return sorted(self.settings.uploads_dir.iterdir())

    def total_jobs(self) -> int:
        res = self.client.get("/v1/stats", headers=self.headers)
        assert res.status_code == 200, res.text
        return res.json()["data"]["jobs"]["total"]

    def post(
        self,
        path: str,
        fields: dict[str, Any],
        encoding: str = "json",
        *,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``fields`` as JSON, urlencoded or multipart (form values as text)."""
        headers = self.headers | (headers or {})
        if encoding == "json":
            assert not files
            return self.client.post(path, json=fields, headers=headers)
        text = {k: _text(v) for k, v in fields.items()}
        if encoding == "form":
            assert not files
            return self.client.post(path, data=text, headers=headers)
        parts: list[tuple[str, Any]] = [(k, (None, v)) for k, v in text.items()]
        parts += list((files or {}).items())
        return self.client.post(path, files=parts, headers=headers)

    def release(self, fields: dict[str, Any], encoding: str = "json", **kwargs: Any) -> str:
        """Submit through ``/release_task``; the task id (the envelope checked on the way)."""
        res = self.post("/release_task", fields, encoding, **kwargs)
        assert res.status_code == 200, res.text
        body = res.json()
        assert set(body) == {"data", "code", "error", "timestamp", "extra"}
        assert body["code"] == 200 and body["error"] is None
        assert isinstance(body["timestamp"], int)
        return body["data"]["task_id"]

    def query(self, task_id: str) -> dict[str, Any]:
        res = self.client.post(
            "/query_result", json={"task_id_list": [task_id]}, headers=self.headers
        )
        assert res.status_code == 200, res.text
        return res.json()["data"][0]

    def wait_task(self, task_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Poll ``/query_result`` until status 1 or 2; (entry, parsed ``result`` items)."""
        entry = wait_for(
            lambda: (e := self.query(task_id))["status"] in (1, 2) and e,
            JOB_TIMEOUT,
            f"task {task_id}",
        )
        assert isinstance(entry["result"], str)
        return entry, json.loads(entry["result"])

    def wait_job(self, job_id: str) -> dict[str, Any]:
        """Poll era A ``/v1/jobs/{id}`` until succeeded or failed."""
        return wait_for(
            lambda: (
                (j := self.client.get(f"/v1/jobs/{job_id}", headers=self.headers).json())["status"]
                in ("succeeded", "failed")
                and j
            ),
            JOB_TIMEOUT,
            f"job {job_id}",
        )

    def download(self, file_url: str) -> httpx.Response:
        """``base + file``, as every client downloads."""
        return self.client.get(self.base + file_url, headers=self.headers)

    @staticmethod
    def path_of(url: str) -> str:
        """The server path inside a ``/v1/audio?path=`` URL (what Wrangler feeds back)."""
        return parse_qs(urlsplit(url).query)["path"][0]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@contextlib.contextmanager
def run_server(home: Path, *, worker: bool = True, **overrides: Any) -> Iterator[Server]:
    """Migrate a fresh database, start uvicorn (and a worker), yield, then stop both."""
    with serving(home, **overrides) as (settings, base):
        yield from _with_worker(settings, base, worker=worker)


def _with_worker(settings: Settings, base: str, *, worker: bool) -> Iterator[Server]:
    worker_thread = WorkerThread(settings) if worker else None
    with httpx.Client(base_url=base, timeout=JOB_TIMEOUT) as client:
        key = settings.api_key
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        running = Server(settings, base, client, worker_thread, auth)
        try:
            if worker_thread is not None:
                worker_thread.start()
                wait_for(
                    lambda: client.get("/health", headers=auth).json()["data"][
                        "models_initialized"
                    ],
                    START_TIMEOUT,
                    "the worker to register",
                )
            yield running
        finally:
            if worker_thread is not None:
                worker_thread.stop()


@pytest.fixture(scope="session")
def make_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., contextlib.AbstractContextManager[Server]]:
    """Start another server with other settings: ``with make_server(api_key="k") as s: ...``."""

    def make(**overrides: Any) -> contextlib.AbstractContextManager[Server]:
        return run_server(tmp_path_factory.mktemp("songqueue"), **overrides)

    return make


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared server: no auth, one synth worker."""
    with run_server(tmp_path_factory.mktemp("songqueue")) as running:
        yield running


@pytest.fixture(scope="session")
def source_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s stereo tone in the system temp directory (where ACE-Step clients copy sources)."""
    rate = 44100
    t = np.arange(3 * rate, dtype=np.float32) / rate
    tone = (0.2 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    path = tmp_path_factory.mktemp("sources") / "source.wav"
    write_audio(Audio(np.stack([tone, tone]), rate), path, "wav")
    return path
