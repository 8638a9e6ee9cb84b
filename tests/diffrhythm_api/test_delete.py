"""``DELETE /api/tasks/{task_id}``: the job and its files go; a running job is stopped first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.diffrhythm_api.conftest import JOB_TIMEOUT, LRC, Server, wait_for


def _job_files(server: Server, task_id: str) -> list[Path]:
    return [p for p in server.tree() if task_id in p.parts]


def test_delete_completed_task_and_its_files(server: Server, files: dict[str, Path]) -> None:
    uploads_before = set(server.settings.uploads_dir.iterdir())
    with files["wav"].open("rb") as ref:
        res = server.client.post(
            "/api/generate",
            files={"lyrics": ("song.lrc", LRC.encode()), "ref_audio": ("ref.wav", ref)},
        )
    task_id = res.json()["task_id"]
    done = server.wait_done(task_id)
    assert done["status"] == "completed", done
    upload = set(server.settings.uploads_dir.iterdir()) - uploads_before
    assert len(upload) == 1  # the saved ref_audio
    assert Path(done["output_path"]).is_file()

    res = server.client.delete(f"/api/tasks/{task_id}")
    assert res.status_code == 200
    assert res.json() == {"message": f"Task {task_id} deleted successfully"}
    assert not Path(done["output_path"]).exists()
    assert not Path(done["output_path"]).parent.exists()
    assert not any(p.exists() for p in upload)
    assert server.client.get(f"/api/status/{task_id}").status_code == 404
    assert server.client.get(f"/api/download/{task_id}").status_code == 404
    assert server.client.get(f"/v1/jobs/{task_id}").status_code == 404  # gone for ACE-Step too
    assert server.client.delete(f"/api/tasks/{task_id}").status_code == 404


def test_delete_queued_and_running_tasks(server: Server, slow_engine: Any) -> None:
    running = server.generate()
    queued = server.generate()
    wait_for(
        lambda: server.status(running)["status"] == "processing",
        JOB_TIMEOUT,
        "the first task to start",
    )
    assert server.status(queued)["status"] == "queued"

    assert server.client.delete(f"/api/tasks/{queued}").status_code == 200
    assert server.client.get(f"/api/status/{queued}").status_code == 404
    assert server.status(running)["status"] == "processing"

    res = server.client.delete(f"/api/tasks/{running}")  # cancelled, stopped, then removed
    assert res.status_code == 200, res.text
    assert server.client.get(f"/api/status/{running}").status_code == 404
    assert _job_files(server, running) == []

    # The worker is free again and runs the next task normally.
    slow_engine.step_seconds = 0.0
    after = server.wait_done(server.generate())
    assert after["status"] == "completed"
    assert _job_files(server, running) == []
