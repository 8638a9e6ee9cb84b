"""ACE-Step routes (spec/acestep-api.md): era A ``/v1/music/generate`` + ``/v1/jobs/{id}``
and ``/v1/music/random`` (unwrapped, string statuses, real ETA), and the shared ``/v1/audio``."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from models.audio import MEDIA_TYPES
from service.api.examples import random_example
from service.auth import require_header, require_token
from service.render import era_a_job
from service.requests import Body, read_body, to_bool
from service.state import app_state
from service.store import queue


async def generate_era_a(request: Request) -> Response:
    """``POST /v1/music/generate``: ``{job_id, status, queue_position}``, unwrapped."""
    state = app_state(request)
    body = await read_body(request, state.settings)
    require_token(state.settings, request, body.fields)
    job, position = await state.submit_positioned(body, api="acestep", request=request)
    return JSONResponse({"job_id": job.job_id, "status": job.status, "queue_position": position})


async def random_era_a(request: Request) -> Response:
    """``POST /v1/music/random`` (era A, until upstream ``b299f02``): a sample-mode job.

    Upstream's LLM invents caption, lyrics and metas; here a random built-in example does.
    ``thinking`` comes from the JSON body or the query string (``Thinking`` too).
    """
    state = app_state(request)
    body = await read_body(request, state.settings, allow_empty=True)
    require_token(state.settings, request, body.fields)
    params = dict(request.query_params) | body.fields
    thinking = to_bool(params.get("thinking", params.get("Thinking")))
    example = random_example("text2music")
    fields = {
        "caption": example.get("caption", ""),
        "lyrics": example.get("lyrics", ""),
        "bpm": example.get("bpm"),
        "key_scale": example.get("keyscale", ""),
        "time_signature": example.get("timesignature", ""),
        "vocal_language": example.get("language", "en"),
        "thinking": True if thinking is None else thinking,
        "sample_mode": True,
    }
    for key in ("audio_duration", "batch_size", "audio_format", "seed", "use_random_seed"):
        if key in params:
            fields[key] = params[key]
    job, position = await state.submit_positioned(Body(fields, {}), api="acestep", request=request)
    return JSONResponse({"job_id": job.job_id, "status": job.status, "queue_position": position})


async def job_era_a(request: Request) -> Response:
    """``GET /v1/jobs/{job_id}``: the job with its queue position and ETA."""
    state = app_state(request)
    require_header(state.settings, request)
    job, position = await queue.get_job_with_position(state.db, request.path_params["job_id"])
    snapshot = await state.etas.snapshot()
    eta = await state.etas.eta(job.job_id) if job.status in ("queued", "running") else None
    return JSONResponse(
        era_a_job(
            state.settings,
            job,
            position=position,
            eta=eta,
            avg_job_seconds=snapshot.avg_job_seconds,
        )
    )


async def audio(request: Request) -> Response:
    """``GET /v1/audio?path=``: a generated file, only from the outputs directory."""
    state = app_state(request)
    require_header(state.settings, request, allow_query=True)
    raw = request.query_params.get("path")
    if raw is None:  # FastAPI's status for a missing required query parameter, as upstream
        raise HTTPException(422, "query parameter 'path' is required")
    path = await state.output_file(raw)
    media_type = MEDIA_TYPES.get(path.suffix.lstrip(".").lower(), "audio/mpeg")
    return FileResponse(path, media_type=media_type)


routes = [
    Route("/v1/music/generate", generate_era_a, methods=["POST"]),
    Route("/v1/music/random", random_era_a, methods=["POST"]),
    Route("/v1/jobs/{job_id}", job_era_a, methods=["GET"]),
    Route("/v1/audio", audio, methods=["GET"]),
]
