"""``songqueue generate | status | cancel`` against a real ``songqueue up`` with an API key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from service.cli import main
from tests.client.up import Up, songqueue_up
from tests.processes import free_port, wait_until

KEY = "client-test-key"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    # 4 steps of 0.15 s: a job runs long enough to be seen running, and to be cancelled
    with songqueue_up(
        tmp_path_factory.mktemp("client") / "home", api_key=KEY, step_seconds=0.15
    ) as running:
        yield running


def connection(up: Up) -> list[str]:
    return ["--server", up.base, "--api-key", KEY]


def test_generate_shows_progress_and_downloads_every_file(up: Up, tmp_path: Path) -> None:
    """The real entry point in a subprocess: stdout is the job id, then the saved paths."""
    lyrics = tmp_path / "song.txt"
    lyrics.write_text("[verse]\nhello queue\n[chorus]\nla la la\n", encoding="utf-8")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONGQUEUE_")}
    env |= {"SONGQUEUE_SERVER": up.base, "SONGQUEUE_API_KEY": KEY, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "service", "generate", "--caption", "calm piano",
         "--lyrics", str(lyrics), "--duration", "1.5", "--batch-size", "2", "--format", "wav",
         "--seed", "7", "-o", str(out)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id, *paths = done.stdout.split()
    assert len(paths) == 2
    for path in map(Path, paths):
        assert path.parent == out and path.name.startswith(job_id[:8])
        info = sf.info(str(path))
        assert info.format == "WAV" and abs(info.duration - 1.5) < 0.01
    assert f"job {job_id} queued at position" in done.stderr
    assert "succeeded in" in done.stderr and "100%" in done.stderr
    job = up.job(job_id)
    assert job["result"]["seed_value"].startswith("7,")  # --seed reached the server
    assert job["result"]["metas"]["lyrics"].startswith("[verse]")


def test_status_reports_a_job_and_the_server(
    up: Up, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = up.submit()
    up.wait_job(job_id)
    assert main(["status", *connection(up), "--json", job_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["job_id"] == job_id and shown["status"] == "succeeded"
    assert main(["status", *connection(up), job_id]) == 0
    table = capsys.readouterr().out
    assert f"job {job_id}" in table and "succeeded" in table and "/v1/audio?path=" in table
    assert main(["status", *connection(up)]) == 0
    server = capsys.readouterr().out
    assert "workers" in server and "ready" in server and "jobs succeeded" in server


def test_cancel_stops_a_running_job_and_a_queued_one(
    up: Up, capsys: pytest.CaptureFixture[str]
) -> None:
    running = up.submit(batch_size=2)  # 8 steps of 0.15 s
    queued = up.submit()
    up.wait_job(running, "running")
    assert main(["cancel", *connection(up), queued, running]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{queued} cancelled", f"{running} running: stops at its next step"]
    job = up.wait_job(running, "failed")
    assert job["cancelled"] and job["result"] is None
    assert up.job(queued)["cancelled"]
    assert main(["cancel", *connection(up), queued]) == 0  # twice is harmless
    assert capsys.readouterr().out.strip() == f"{queued} cancelled"
    finished = up.submit()
    up.wait_job(finished)
    assert main(["cancel", *connection(up), finished]) == 0  # too late is harmless too
    assert capsys.readouterr().out.strip() == f"{finished} already succeeded"


def test_generate_reports_refusals_and_unreachable_servers(
    up: Up, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", "--caption", "x", "-o", str(tmp_path)]
    assert main([*args, "--server", up.base, "--api-key", "wrong"]) == 2
    assert "401 Invalid API key" in capsys.readouterr().err
    assert main([*args, *connection(up), "--bpm", "1000"]) == 2
    assert "400" in capsys.readouterr().err
    assert main([*args, "--server", f"http://127.0.0.1:{free_port()}"]) == 2
    assert "cannot reach" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_no_wait_prints_only_the_id(
    up: Up, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", *connection(up), "--caption", "x", "--duration", "1", "--no-wait"]
    assert main(args) == 0
    job_id = capsys.readouterr().out.strip()
    wait_until(lambda: up.job(job_id)["status"] == "succeeded", 30, "the job to succeed")
