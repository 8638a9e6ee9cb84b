"""Job rows rendered in the shapes each API speaks. Pure functions: no I/O."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from service.config import Settings
from service.files import audio_url
from service.schemas import Job, JobResult
from service.store.eta import JobEta

ERA_A_STATUS = {"cancelled": "failed"}  # era A clients know four statuses
NOT_AVAILABLE = "N/A"


def result_paths(settings: Settings, result: JobResult) -> list[Path]:
    return [settings.outputs_dir / f.path for f in result.files]


def metas_of(job: Job) -> dict[str, Any]:
    """The musical facts of a job: what the engine used when done, else what was asked."""
    req = job.request
    metas: dict[str, Any] = {
        "bpm": req.bpm if req.bpm is not None else NOT_AVAILABLE,
        "duration": req.audio_duration if req.audio_duration is not None else NOT_AVAILABLE,
        "genres": NOT_AVAILABLE,
        "keyscale": req.key_scale or NOT_AVAILABLE,
        "timesignature": req.time_signature or NOT_AVAILABLE,
    }
    if job.result is not None:
        metas.update({k: v for k, v in job.result.metas.items() if k in metas})
    return metas


def _nullable(value: Any) -> Any:
    return None if value in ("", NOT_AVAILABLE) else value


def era_a_result(settings: Settings, job: Job) -> dict[str, Any] | None:
    if job.result is None:
        return None
    urls = [audio_url(p) for p in result_paths(settings, job.result)]
    metas = metas_of(job) | {"caption": job.request.prompt, "lyrics": job.request.lyrics}
    bpm = metas["bpm"]
    return {
        "first_audio_path": urls[0] if urls else None,
        "second_audio_path": urls[1] if len(urls) > 1 else None,
        "audio_paths": urls,
        "generation_info": job.result.generation_info,
        "status_message": job.result.status_message,
        "seed_value": job.result.seed_value,
        "metas": metas,
        "bpm": bpm if isinstance(bpm, int) else None,
        "duration": _nullable(metas["duration"]),
        "genres": _nullable(metas["genres"]),
        "keyscale": _nullable(metas["keyscale"]),
        "timesignature": _nullable(metas["timesignature"]),
        "lm_model": None,
        "dit_model": job.result.model_name,
    }


def era_a_job(
    settings: Settings,
    job: Job,
    *,
    position: int,
    eta: JobEta | None,
    avg_job_seconds: float | None,
) -> dict[str, Any]:
    """``GET /v1/jobs/{id}`` (spec §6), with a real ETA and a few additive keys."""
    error = job.error
    if job.status == "cancelled":
        error = error or "cancelled by request"
    return {
        "job_id": job.job_id,
        "status": ERA_A_STATUS.get(job.status, job.status),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "queue_position": position,
        "eta_seconds": None if eta is None else round(eta.finish_in, 3),
        "avg_job_seconds": None if avg_job_seconds is None else round(avg_job_seconds, 3),
        "result": era_a_result(settings, job),
        "error": error if job.status in ("failed", "cancelled") else None,
        # additive: songqueue's own progress fields
        "eta_start_seconds": None if eta is None else round(eta.start_in, 3),
        "progress": round(job.progress, 4),
        "stage": job.stage,
        "steps_done": job.steps_done,
        "steps_total": job.steps_total,
        "attempts": job.attempts,
        "task_type": job.task_type,
        "cancelled": job.status == "cancelled",
    }


# --- era C: /release_task, /query_result (spec §5) ---------------------------------------------

ERA_C_STATUS = {"queued": 0, "running": 0, "succeeded": 1, "failed": 2, "cancelled": 2}
ENV = "development"  # ACE-Step's constant item ``env``


def wrap(data: Any, code: int = 200, error: str | None = None) -> dict[str, Any]:
    """ACE-Step's envelope, exactly these five keys (spec §2.1)."""
    return {
        "data": data,
        "code": code,
        "error": error,
        "timestamp": int(time.time() * 1000),
        "extra": None,
    }


def _era_c_metas(job: Job) -> dict[str, Any]:
    return metas_of(job) | {"prompt": job.request.prompt, "lyrics": job.request.lyrics}


def progress_text(job: Job, position: int, eta: JobEta | None) -> str:
    """One line per task (ACE-Step's is the process's last log line, shared by all tasks)."""
    if job.status == "queued":
        wait = "" if eta is None else f", starts in about {eta.start_in:.0f} s"
        return f"queued: position {position}{wait}"
    if job.status == "running":
        steps = f" {job.steps_done}/{job.steps_total} steps" if job.steps_total else ""
        return f"{job.stage}{steps}"
    if job.status == "succeeded":
        return "succeeded"
    first = (job.error or job.status).strip().splitlines()
    return f"{job.status}: {first[0] if first else ''}"


def era_c_items(
    settings: Settings, job: Job, *, position: int = 0, eta: JobEta | None = None
) -> list[dict[str, Any]]:
    """The parsed ``result`` list: one item per audio file when done, else one status item."""
    status = ERA_C_STATUS.get(job.status, 2)
    base: dict[str, Any] = {
        "file": "",
        "url": "",
        "wave": "",
        "status": status,
        "create_time": int(job.created_at),
        "env": ENV,
        "prompt": job.request.prompt,
        "lyrics": job.request.lyrics,
        "metas": _era_c_metas(job),
    }
    if job.result is not None and job.status == "succeeded":
        done = base | {
            "generation_info": job.result.generation_info,
            "seed_value": job.result.seed_value,
            "lm_model": None,
            "dit_model": job.result.model_name,
            "progress": 1.0,
            "stage": "succeeded",
            "error": None,
        }
        urls = [audio_url(p) for p in result_paths(settings, job.result)] or [""]
        return [done | {"file": url, "url": url} for url in urls]
    error = None
    if status == 2:
        error = job.error or ("cancelled by request" if job.status == "cancelled" else "failed")
    return [
        base
        | {
            "progress": 0.0 if status == 2 else round(job.progress, 4),
            "stage": "failed" if status == 2 else job.stage,
            "error": error,
            "queue_position": position,
            "eta_seconds": None if eta is None else round(eta.finish_in, 3),
        }
    ]


def era_c_entry(
    settings: Settings, job: Job, *, position: int = 0, eta: JobEta | None = None
) -> dict[str, Any]:
    """One element of ``/query_result``'s list; ``result`` is a JSON *string*, as clients parse."""
    items = era_c_items(settings, job, position=position, eta=eta)
    return {
        "task_id": job.job_id,
        "status": ERA_C_STATUS.get(job.status, 2),
        "result": json.dumps(items, ensure_ascii=False),
        "progress_text": progress_text(job, position, eta),
    }


def era_c_unknown(task_id: str) -> dict[str, Any]:
    """An id we never saw: ACE-Step's ``status 0, result "[]"`` (spec §5.2 step 3)."""
    return {"task_id": task_id, "status": 0, "result": "[]"}
