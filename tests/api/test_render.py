"""Era C rendering of states a fast synth job passes too quickly to catch over HTTP: running
and cancelled (pure functions, no server)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from service.config import load_settings
from service.render import era_c_entry, wrap
from service.schemas import GenerationRequest, Job
from service.store.eta import JobEta


def _job(**changes: object) -> Job:
    now = time.time()
    fields: dict[str, object] = {
        "id": 1,
        "job_id": "j-1",
        "api": "acestep",
        "task_type": "text2music",
        "status": "running",
        "priority": 0,
        "request": GenerationRequest(prompt="p", lyrics="l", audio_duration=2.0, bpm=100),
        "duration": 2.0,
        "batch_size": 2,
        "created_at": now - 3,
        "started_at": now - 1,
        "finished_at": None,
        "attempts": 1,
        "max_attempts": 3,
        "worker_id": "w",
        "engine": "synth",
        "steps_done": 3,
        "steps_total": 8,
        "progress": 0.375,
        "stage": "generating",
        "last_step_at": now,
        "cancel_requested": False,
        "result": None,
        "error": None,
    }
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


def test_running(tmp_path: Path) -> None:
    settings = load_settings(environ={}, env_file=None, home=str(tmp_path))
    entry = era_c_entry(settings, _job(), eta=JobEta(0.0, 1.5))
    assert entry["status"] == 0 and entry["progress_text"] == "generating 3/8 steps"
    (item,) = json.loads(entry["result"])
    assert item["status"] == 0 and item["stage"] == "generating" and item["progress"] == 0.375
    assert item["file"] == "" and item["eta_seconds"] == 1.5 and item["metas"]["bpm"] == 100
    assert item["create_time"] == int(_job().created_at)


def test_cancelled_reads_as_failed(tmp_path: Path) -> None:
    settings = load_settings(environ={}, env_file=None, home=str(tmp_path))
    entry = era_c_entry(settings, _job(status="cancelled", stage="cancelled"))
    (item,) = json.loads(entry["result"])
    assert entry["status"] == 2 and item["status"] == 2 and item["stage"] == "failed"
    assert item["error"] == "cancelled by request"


def test_wrap_has_exactly_five_keys() -> None:
    body = wrap({"x": 1})
    assert list(body) == ["data", "code", "error", "timestamp", "extra"]
    assert abs(body["timestamp"] / 1000 - time.time()) < 5
    failed = wrap(None, code=500, error="No example data available")
    assert failed["code"] == 500 and failed["data"] is None
