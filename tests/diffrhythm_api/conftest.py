"""A real songqueue for DiffRhythm-API clients: uvicorn on a free port in a thread and a worker
in another thread (its own event loop), on a fresh data directory.

Two servers per session: ``server`` runs ``models.testing.TimedEngine`` (a sine tone of the
asked length, with a step time a test can raise to keep a job running) and ``synth_server``
runs the real synth engine for the seed's examples and the edit checks. Waits poll a
condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from models.audio import write_audio
from models.engine import Audio, Engine
from service.config import Settings
from tests.harness import WorkerThread, serving, wait_for

JOB_TIMEOUT = 60.0  # seconds for one job (95 s of audio) on two slow cores
LRC = """[00:00.00]Walking down the river road
[00:05.20]Morning light on every stone
[00:10.50]Sing it slow and sing it low
[00:16.00]Carry me back home
"""


@dataclass
class Server:
    settings: Settings
    base: str
    client: httpx.Client
    engine: Engine

    def generate(self, prompt: str = "folk, acoustic guitar", **data: Any) -> str:
        files = {"lyrics": ("song.lrc", LRC.encode(), "application/octet-stream")}
        res = self.client.post("/api/generate", files=files, data={"ref_prompt": prompt, **data})
        assert res.status_code == 200, res.text
        return str(res.json()["task_id"])

    def status(self, task_id: str) -> dict[str, Any]:
        res = self.client.get(f"/api/status/{task_id}")
        assert res.status_code == 200, res.text
        return dict(res.json())

    def wait_done(self, task_id: str, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
        return dict(
            wait_for(
                lambda: (s := self.status(task_id))["status"] in ("completed", "failed") and s,
                timeout,
                f"task {task_id} to finish",
            )
        )

    def tree(self) -> set[Path]:
        """Every file under outputs and uploads (to prove nothing is left behind)."""
        return {
            p
            for root in (self.settings.outputs_dir, self.settings.uploads_dir)
            for p in root.rglob("*")
            if p.is_file()
        }


@contextlib.contextmanager
def run_server(home: Path, engine: Engine, **overrides: Any) -> Iterator[Server]:
    """Migrate a fresh database, start uvicorn and a worker, yield, then stop both."""
    with serving(home, **overrides) as (settings, base):
        worker = WorkerThread(settings, engine)
        try:
            with httpx.Client(base_url=base, timeout=JOB_TIMEOUT) as client:
                worker.start()
                yield Server(settings, base, client, engine)
        finally:
            worker.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """TimedEngine: 4 steps of 0 s by default; set ``server.engine.step_seconds`` to slow it."""
    from models.testing import TimedEngine

    engine = TimedEngine(steps=4, step_seconds=0.0)
    with run_server(tmp_path_factory.mktemp("dr-timed"), engine) as s:
        yield s


@pytest.fixture(scope="session")
def synth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from models.synth import SynthEngine

    with run_server(tmp_path_factory.mktemp("dr-synth"), SynthEngine()) as s:
        yield s


@pytest.fixture
def slow_engine(server: Server) -> Iterator[Any]:
    """Make each step of ``server``'s engine take 0.25 s, so a job stays running a while."""
    engine: Any = server.engine
    engine.step_seconds = 0.25
    engine.steps = 40
    try:
        yield engine
    finally:
        engine.step_seconds = 0.0
        engine.steps = 4


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The client's files: lyrics.lrc, reference.mp3 and reference.wav (3 s tones), notes.txt."""
    root = tmp_path_factory.mktemp("client")
    (root / "lyrics.lrc").write_text(LRC, encoding="utf-8")
    (root / "notes.txt").write_text("just some words\nwithout any time tags\n", encoding="utf-8")
    rate = 44100
    t = np.arange(3 * rate, dtype=np.float32) / rate
    tone = (0.2 * np.sin(2 * np.pi * 196.0 * t)).astype(np.float32)
    audio = Audio(np.stack([tone, tone]), rate)
    write_audio(audio, root / "reference.wav", "wav")
    write_audio(audio, root / "reference.mp3", "mp3")
    return {
        "lrc": root / "lyrics.lrc",
        "txt": root / "notes.txt",
        "mp3": root / "reference.mp3",
        "wav": root / "reference.wav",
    }
