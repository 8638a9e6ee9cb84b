"""Tiny random-weight DiffRhythm weights in the models directory make ``songqueue up`` pick the
DiffRhythm engine: ``weights --check`` passes, ``/v1/models`` names it, and a job runs through a
worker on the real loader, sampler, lyrics and VAE code."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from tests.processes import (
    finished_job,
    free_port,
    process_env,
    songqueue,
    stop,
    wait_http,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_up_picks_diffrhythm_when_its_weights_are_present(tmp_path: Path) -> None:
    from models.diffrhythm.tiny import write_tiny_model_dir

    home = tmp_path / "home"
    write_tiny_model_dir(home / "models")
    env = process_env(home)
    check = subprocess.run(
        [sys.executable, "-m", "service", "weights", "--check"],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    up = songqueue(["up", "--port", str(port)], env, tmp_path / "up.log")
    try:
        wait_http(base, timeout=90)
        wait_until(
            lambda: httpx.get(f"{base}/v1/stats").json()["data"]["workers"] == 1,
            120,
            "the DiffRhythm worker to load its weights",
        )
        models = httpx.get(f"{base}/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["acestep/diffrhythm-v1.2"]
        body = {
            "caption": "gentle folk song",
            "lyrics": "[verse]\nWalking home tonight",
            "audio_duration": 4,
            "batch_size": 1,
            "inference_steps": 2,
            "audio_format": "wav",
        }
        job_id = httpx.post(f"{base}/v1/music/generate", json=body).json()["job_id"]
        job = finished_job(base, job_id, 180)
        assert job["status"] == "succeeded", job
        assert job["result"]["dit_model"] == "diffrhythm-v1.2"
        audio = httpx.get(base + job["result"]["first_audio_path"])
        out = tmp_path / "song.wav"
        out.write_bytes(audio.content)
        assert sf.info(str(out)).frames == 4 * 44100
    finally:
        assert stop(up, signal.SIGTERM, timeout=60) == 0, (tmp_path / "up.log").read_text()[-3000:]
