"""Job rows rendered in the shapes each API speaks. Pure functions: no I/O."""

from __future__ import annotations

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
