"""Era A (spec §1.2, §6): ``/v1/music/generate``, ``/v1/music/random`` and ``/v1/jobs/{id}``,
unwrapped, with string statuses and a real ETA; and the seed document's curl examples, run
verbatim through curl (only the port and the local file path differ)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.audio import write_audio
from models.engine import Audio

JOB_KEYS = {
    "job_id",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "queue_position",
    "eta_seconds",
    "avg_job_seconds",
    "result",
    "error",
}
RESULT_KEYS = {
    "first_audio_path",
    "second_audio_path",
    "audio_paths",
    "generation_info",
    "status_message",
    "seed_value",
    "metas",
    "bpm",
    "duration",
    "genres",
    "keyscale",
    "timesignature",
    "lm_model",
    "dit_model",
}
TINY = {"audio_duration": 2, "batch_size": 1}


def _submit(server: Any, fields: dict[str, Any], encoding: str = "json", **kw: Any) -> str:
    res = server.post("/v1/music/generate", fields, encoding, **kw)
    assert res.status_code == 200, res.text
    body = res.json()
    assert set(body) == {"job_id", "status", "queue_position"}
    assert body["status"] == "queued" and body["queue_position"] >= 1
    return body["job_id"]


@pytest.mark.parametrize("encoding", ("json", "form", "multipart"))
def test_generate_and_poll(server: Any, encoding: str) -> None:
    fields = {
        "caption": "upbeat pop song",
        "lyrics": "Hello world",
        "inference_steps": 16,
        "audio_duration": 2,
        "batch_size": 2,
        "use_random_seed": False,
        "seed": "3,4",
        "key_scale": "G major",
    }
    job = server.wait_job(_submit(server, fields, encoding))
    assert set(job) >= JOB_KEYS and job["status"] == "succeeded"
    assert job["queue_position"] == 0 and job["eta_seconds"] is None and job["error"] is None
    assert job["finished_at"] >= job["started_at"] >= job["created_at"]
    result = job["result"]
    assert set(result) == RESULT_KEYS
    assert (
        len(result["audio_paths"]) == 2 and result["first_audio_path"] == result["audio_paths"][0]
    )
    assert result["second_audio_path"] == result["audio_paths"][1]
    assert result["seed_value"] == "3,4" and result["keyscale"] == "G major"
    assert result["metas"]["caption"] == "upbeat pop song" and result["duration"] == 2.0
    assert isinstance(result["bpm"], int) and result["dit_model"] == "songqueue-synth-v1"
    assert server.download(result["first_audio_path"]).status_code == 200


def test_failed_job_shape(server: Any) -> None:
    job = server.wait_job(_submit_failed(server))
    assert job["status"] == "failed" and job["result"] is None
    assert "extract" in job["error"] and job["queue_position"] == 0


def _submit_failed(server: Any) -> str:
    res = server.post("/v1/music/generate", {"caption": "x", "task_type": "extract"})
    assert res.status_code == 200
    return res.json()["job_id"]


def test_queued_job_has_position_and_eta(server: Any) -> None:
    """ETA = when the queue ahead should finish, learned from the jobs done so far."""
    shape = {"caption": "eta", **TINY}
    server.wait_job(_submit(server, shape))  # a timing sample for this shape
    ids = [_submit(server, shape) for _ in range(4)]
    last = server.client.get(f"/v1/jobs/{ids[-1]}").json()
    assert last["status"] in ("queued", "running", "succeeded")
    if last["status"] == "queued":
        assert last["queue_position"] >= 1
        assert isinstance(last["eta_seconds"], float) and last["eta_seconds"] > 0
        assert last["avg_job_seconds"] > 0
    for job_id in ids:
        assert server.wait_job(job_id)["status"] == "succeeded"


def test_queued_without_workers(make_server: Any) -> None:
    with make_server(worker=False) as idle:
        ids = [_submit(idle, {"caption": f"q{i}", **TINY}) for i in range(2)]
        job = idle.client.get(f"/v1/jobs/{ids[1]}").json()
        assert set(job) >= JOB_KEYS and job["status"] == "queued"
        assert job["queue_position"] == 2 and job["started_at"] is None
        assert job["eta_seconds"] is None  # no worker alive: no honest estimate


def test_multipart_era_a_upload_names(server: Any, source_wav: Path) -> None:
    files = {
        "src_audio": ("song.wav", source_wav.read_bytes(), "audio/wav"),
        "reference_audio": ("ref.wav", source_wav.read_bytes(), "audio/wav"),
    }
    fields = {"caption": "remix this song", "task_type": "cover", "batch_size": 1}
    job = server.wait_job(_submit(server, fields, "multipart", files=files))
    assert job["status"] == "succeeded", job


def test_random(server: Any) -> None:
    """``skills/acemusic/scripts/acemusic.sh``: ``POST /v1/music/random {thinking}``."""
    res = server.client.post("/v1/music/random", json={"thinking": True, **TINY})
    assert res.status_code == 200 and set(res.json()) == {"job_id", "status", "queue_position"}
    job = server.wait_job(res.json()["job_id"])
    assert job["status"] == "succeeded" and job["result"]["metas"]["caption"]
    res = server.client.post("/v1/music/random?thinking=false&audio_duration=2&batch_size=1")
    assert res.status_code == 200
    assert server.wait_job(res.json()["job_id"])["status"] == "succeeded"


def test_json_without_content_type_header(server: Any) -> None:
    """``curl -d '{...}'`` without ``-H`` sends urlencoded; the JSON is still understood."""
    res = server.client.post(
        "/v1/music/generate",
        content=json.dumps({"caption": "forgot the header", **TINY}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert res.status_code == 200
    job = server.wait_job(res.json()["job_id"])
    assert job["result"]["metas"]["caption"] == "forgot the header"


# --- the seed document's curl examples, verbatim --------------------------------------------

CURL_JSON = """curl -X POST http://localhost:8001/v1/music/generate \\
  -H 'Content-Type: application/json' \\
  -d '{
    "caption": "upbeat pop song",
    "lyrics": "Hello world",
    "inference_steps": 16
  }'"""
CURL_FORM = """curl -X POST http://localhost:8001/v1/music/generate \\
  -H 'Content-Type: application/x-www-form-urlencoded' \\
  --data-urlencode 'caption=upbeat pop song' \\
  --data-urlencode 'lyrics=Hello world' \\
  --data-urlencode 'inference_steps=16'"""
CURL_UPLOAD = """curl -X POST http://localhost:8001/v1/music/generate \\
  -F "caption=remix this song" \\
  -F "src_audio=@/path/to/local/song.mp3" \\
  -F "task_type=repaint\""""


@pytest.fixture(scope="module")
def local_song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rate = 44100
    t = np.arange(2 * rate, dtype=np.float32) / rate
    tone = (0.2 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)
    return write_audio(
        Audio(np.stack([tone, tone]), rate), tmp_path_factory.mktemp("local") / "song.mp3", "mp3"
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(
    "command", (CURL_JSON, CURL_FORM, CURL_UPLOAD), ids=("json", "form", "upload")
)
def test_seed_curl_examples(server: Any, local_song: Path, command: str) -> None:
    port = server.base.rsplit(":", 1)[1]
    command = command.replace("localhost:8001", f"localhost:{port}")
    command = command.replace("/path/to/local/song.mp3", str(local_song))
    out = subprocess.run(
        ["bash", "-c", command + " --silent --show-error --fail-with-body"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    created = json.loads(out)
    assert set(created) == {"job_id", "status", "queue_position"}
    assert created["status"] == "queued"
    job = server.wait_job(created["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["metas"]["caption"] in ("upbeat pop song", "remix this song")
    assert job["result"]["status_message"]
