"""The DiffRhythm API's happy paths over HTTP, including the seed's curl and Python examples."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import soundfile as sf

from tests.diffrhythm_api.conftest import JOB_TIMEOUT, LRC, Server, wait_for

CURL_TIMEOUT = 30.0  # seconds for one curl call

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(*args: str) -> str:
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", *args],
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_health(server: Server) -> None:
    res = server.client.get("/api/health")
    assert res.status_code == 200
    assert res.json() == {
        "status": "healthy",
        "message": "DiffRhythm API is running",
        "version": "1.0.0",
    }


def test_generate_status_download(server: Server) -> None:
    res = server.client.post(
        "/api/generate",
        files={"lyrics": ("lyrics.lrc", LRC.encode())},
        data={"ref_prompt": "folk, acoustic guitar", "audio_length": "95", "chunked": "true"},
    )
    assert res.status_code == 200, res.text
    created = res.json()
    assert created["status"] == "queued"
    assert created["message"] == "Music generation task queued successfully"
    task_id = created["task_id"]

    first = server.status(task_id)
    assert first["task_id"] == task_id
    assert first["status"] in ("queued", "processing", "completed")
    assert datetime.fromisoformat(first["created_at"])

    done = server.wait_done(task_id)
    assert done["status"] == "completed", done
    assert done["progress"] == 100
    assert done["error"] is None
    assert datetime.fromisoformat(done["completed_at"]) >= datetime.fromisoformat(
        done["created_at"]
    )
    out = Path(done["output_path"])
    assert out.is_file() and out.suffix == ".wav"
    assert set(done) >= {
        "task_id",
        "status",
        "progress",
        "message",
        "output_path",
        "created_at",
        "completed_at",
        "error",
    }

    wav = server.client.get(f"/api/download/{task_id}")
    assert wav.status_code == 200
    assert wav.headers["content-type"] == "audio/wav"
    assert wav.content == out.read_bytes()
    info = sf.info(io.BytesIO(wav.content))
    assert info.format == "WAV"
    assert info.duration == pytest.approx(95.0, abs=0.05)

    # Same store as the ACE-Step API: the job is visible there, lyrics kept as LRC.
    entry = server.client.post("/query_result", json={"task_id_list": [task_id]}).json()
    item = json.loads(entry["data"][0]["result"])[0]
    assert entry["data"][0]["status"] == 1
    assert "[00:05.20]Morning light on every stone" in item["lyrics"]
    assert item["prompt"] == "folk, acoustic guitar"


def test_batch_and_length(server: Server) -> None:
    task_id = server.generate(audio_length="120", batch_infer_num="2", chunked="false")
    done = server.wait_done(task_id)
    assert done["status"] == "completed", done
    assert len(done["output_paths"]) == 2
    assert done["output_path"] == done["output_paths"][0]
    for path in done["output_paths"]:
        assert sf.info(path).duration == pytest.approx(120.0, abs=0.05)


def test_reference_audio_upload(server: Server, files: dict[str, Path]) -> None:
    with files["lrc"].open("rb") as lrc, files["wav"].open("rb") as ref:
        res = server.client.post(
            "/api/generate",
            files={"lyrics": ("lyrics.lrc", lrc), "ref_audio": ("reference.wav", ref)},
            data={"audio_length": "96"},
        )
    assert res.status_code == 200, res.text
    done = server.wait_done(res.json()["task_id"])
    assert done["status"] == "completed", done
    assert sf.info(done["output_path"]).duration == pytest.approx(96.0, abs=0.05)


def test_status_while_processing(server: Server, slow_engine: object) -> None:
    task_id = server.generate()
    running = wait_for(
        lambda: (s := server.status(task_id))["status"] == "processing" and s["progress"] > 0 and s,
        JOB_TIMEOUT,
        "the task to report progress",
    )
    assert 0 < running["progress"] < 100
    assert running["output_path"] is None and running["completed_at"] is None
    early = server.client.get(f"/api/download/{task_id}")
    assert early.status_code == 400
    assert "not completed" in early.json()["detail"]
    assert server.client.delete(f"/api/tasks/{task_id}").status_code == 200


@needs_curl
def test_seed_curl_examples(synth_server: Server, files: dict[str, Path], tmp_path: Path) -> None:
    """The README's curl lines, with its host replaced by the test server's."""
    base = synth_server.base
    with_prompt = json.loads(
        curl(
            "-X",
            "POST",
            f"{base}/api/generate",
            "-F",
            f"lyrics=@{files['lrc']}",
            "-F",
            "ref_prompt=folk, acoustic guitar, harmonica, touching",
            "-F",
            "audio_length=95",
            "-F",
            "chunked=true",
        )
    )
    with_audio = json.loads(
        curl(
            "-X",
            "POST",
            f"{base}/api/generate",
            "-F",
            f"lyrics=@{files['lrc']}",
            "-F",
            f"ref_audio=@{files['mp3']}",
            "-F",
            "audio_length=95",
        )
    )
    for created in (with_prompt, with_audio):
        assert created["status"] == "queued"
        task_id = created["task_id"]
        wait_for(
            lambda tid=task_id: (
                json.loads(curl(f"{base}/api/status/{tid}"))["status"] in ("completed", "failed")
            ),
            JOB_TIMEOUT,
            f"task {task_id}",
        )
        status = json.loads(curl(f"{base}/api/status/{task_id}"))
        assert status["status"] == "completed", status
        out = tmp_path / f"{task_id}.wav"
        curl(f"{base}/api/download/{task_id}", "-o", str(out))
        assert sf.info(out).duration == pytest.approx(95.0, abs=0.05)
        assert sf.read(out)[0].std() > 0.001  # real sound, not silence


def test_seed_python_example(synth_server: Server, files: dict[str, Path], tmp_path: Path) -> None:
    """The README's Python client, run as written against the test server."""
    requests = pytest.importorskip("requests", reason="the seed's example uses requests")
    base = synth_server.base
    with files["lrc"].open("rb") as f:
        response = requests.post(
            f"{base}/api/generate",
            files={"lyrics": f},
            data={
                "ref_prompt": "folk, acoustic guitar, harmonica, touching",
                "audio_length": 95,
                "chunked": True,
            },
            timeout=CURL_TIMEOUT,
        )
    task_id = response.json()["task_id"]
    status = wait_for(
        lambda: (
            (s := requests.get(f"{base}/api/status/{task_id}", timeout=CURL_TIMEOUT).json())[
                "status"
            ]
            in ("completed", "failed")
            and s
        ),
        JOB_TIMEOUT,
        "the example's task",
    )
    if status["status"] == "completed":
        audio = requests.get(f"{base}/api/download/{task_id}", timeout=CURL_TIMEOUT)
        with (tmp_path / "output.wav").open("wb") as f:
            f.write(audio.content)
    assert status["status"] == "completed", status
    assert sf.info(tmp_path / "output.wav").duration == pytest.approx(95.0, abs=0.05)
