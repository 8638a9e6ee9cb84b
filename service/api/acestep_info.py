"""ACE-Step service routes (spec/acestep-api.md §1.1, §1.3, §9): ``/health``, ``/v1/stats``,
``/v1/models``, ``/v1/model_inventory``, ``/v1/init``, ``/format_input`` and
``/create_random_sample``.

songqueue has no ACE-Step language model: ``/format_input`` returns its input normalised (no
LLM rewrites it), and ``/create_random_sample`` picks one of a few built-in examples.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.registry import resolve_engine_name
from service.api.examples import random_example
from service.auth import require_header, require_token
from service.render import wrap
from service.requests import lookup, read_body, to_bool, to_int
from service.schemas import MAX_DURATION_SECONDS, RUNNABLE_TASKS
from service.state import AppState, app_state
from service.store import queue
from service.store.eta import WORKER_ALIVE_SECONDS

log = logging.getLogger(__name__)

SERVICE = {"status": "ok", "service": "ACE-Step API", "version": "1.0"}
# What each engine reports as its model name, known here without importing the engine (the
# API process never imports torch). Keep in step with ``Engine.model_name`` in models/.
ENGINE_MODEL_NAMES = {"synth": "songqueue-synth-v1", "diffrhythm": "diffrhythm-v1.2"}
SUPPORTED_TASK_TYPES = sorted(RUNNABLE_TASKS)
DEFAULT_AVG_JOB_SECONDS = 5.0  # ACE-Step's starting value before any job has finished
MODEL_CREATED_AGE = 30 * 86400  # seconds: OpenRouter ``created`` is "30 days ago" upstream
SIMPLE_MODE = "simple_mode"


# --- which models are loaded ----------------------------------------------------------------


@cache
def _engine_model(choice: str, models_dir: Path) -> str:
    try:
        name = resolve_engine_name(choice, models_dir)
    except ValueError:
        name = choice
    return ENGINE_MODEL_NAMES.get(name, name)


def configured_model(state: AppState) -> str:
    """The model the configured engine would load, when no worker is alive to say so."""
    return _engine_model(state.settings.engine, state.settings.models_path)


async def loaded_models(state: AppState) -> tuple[list[str], bool]:
    """Model names of the live workers (first = default), or the configured one; and whether
    any worker is alive."""
    async with state.db.read() as conn:
        alive = await queue.alive_workers(conn, within_seconds=WORKER_ALIVE_SECONDS)
    names = list(dict.fromkeys(w.model_name for w in alive))
    return (names or [configured_model(state)]), bool(names)


def native_models(names: list[str], *, alive: bool) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "is_default": i == 0,
            "is_loaded": alive,
            "supported_task_types": SUPPORTED_TASK_TYPES,
        }
        for i, name in enumerate(names)
    ]


def inventory(names: list[str], *, alive: bool) -> dict[str, Any]:
    """The native model list of ``/v1/model_inventory`` (spec §1.3)."""
    return {
        "models": native_models(names, alive=alive),
        "default_model": names[0],
        "lm_models": [],
        "loaded_lm_model": None,
        "llm_initialized": False,
    }


# --- routes -------------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """Always ``ok`` and always open; the model fields come from the live workers."""
    state = app_state(request)
    try:
        names, alive = await loaded_models(state)
    except Exception:  # the database is busy or gone: liveness is still "ok"
        log.warning("health: could not read workers", exc_info=True)
        names, alive = [configured_model(state)], False
    return JSONResponse(
        wrap(
            SERVICE
            | {
                "models_initialized": alive,
                "llm_initialized": False,
                "loaded_model": names[0],
                "loaded_lm_model": None,
            }
        )
    )


async def stats(request: Request) -> Response:
    """Job counts by status, queue size and limit, and the mean job time (spec §9.3)."""
    state = app_state(request)
    require_header(state.settings, request)
    counts = await queue.counts_by_status(state.db)
    snapshot = await state.etas.snapshot()
    avg = snapshot.avg_job_seconds
    jobs = {s: counts.get(s, 0) for s in ("queued", "running", "succeeded", "failed")}
    jobs["failed"] += counts.get("cancelled", 0)
    async with state.db.read() as conn:
        alive = await queue.alive_workers(conn, within_seconds=WORKER_ALIVE_SECONDS)
    return JSONResponse(
        wrap(
            {
                "jobs": {"total": sum(counts.values()), **jobs},
                "queue_size": jobs["queued"],
                "queue_maxsize": state.settings.queue_maxsize,
                "avg_job_seconds": round(avg if avg is not None else DEFAULT_AVG_JOB_SECONDS, 3),
                "workers": len(alive),
                # songqueue's own: every live worker, on whichever host it runs
                "worker_list": [
                    {
                        "worker_id": w.worker_id,
                        "host": w.host,
                        "pid": w.pid,
                        "engine": w.engine,
                        "model": w.model_name,
                        "jobs_done": w.jobs_done,
                        "current_job": w.current_job,
                        "heartbeat_age_seconds": round(max(time.time() - w.heartbeat_at, 0), 1),
                    }
                    for w in alive
                ],
            }
        )
    )


async def models(request: Request) -> Response:
    """OpenRouter's list (as upstream serves it) plus the native ``models``/``default_model``
    keys that older clients read (spec §12). Upstream leaves it open; with an API key set,
    songqueue asks for it here as on every route but the health checks and the docs."""
    state = app_state(request)
    require_header(state.settings, request)
    names, alive = await loaded_models(state)
    created = int(time.time()) - MODEL_CREATED_AGE
    data = [
        {
            "id": f"acestep/{name}",
            "name": f"ACE-Step {name}",
            "created": created,
            "input_modalities": ["text", "audio"],
            "output_modalities": ["audio", "text"],
            "context_length": 4096,
            "max_output_length": 300,
            "pricing": {"prompt": "0", "completion": "0", "request": "0", "image": "0"},
            "description": "AI music generation model",
            "architecture": None,
        }
        for name in names
    ]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "models": native_models(names, alive=alive),
            "default_model": names[0],
        }
    )


async def model_inventory(request: Request) -> Response:
    state = app_state(request)
    require_header(state.settings, request)
    names, alive = await loaded_models(state)
    return JSONResponse(wrap(inventory(names, alive=alive)))


async def init(request: Request) -> Response:
    """Nothing to load on demand (workers load their engine at start): report what is loaded."""
    state = app_state(request)
    body = await read_body(request, state.settings, allow_empty=True)
    require_token(state.settings, request, body.fields)
    names, alive = await loaded_models(state)
    wanted = body.fields.get("model")
    message = "Model initialization completed"
    if wanted and str(wanted) not in names:
        message += f"; {wanted!s} is not available here, jobs use {names[0]}"
    if to_bool(body.fields.get("init_llm")):
        message += "; songqueue has no ACE-Step language model (llm_initialized stays false)"
    slot = to_int(body.fields.get("slot"))
    return JSONResponse(
        wrap(
            {
                "message": message,
                "slot": slot if slot in (1, 2, 3) else 1,
                "loaded_model": names[0],
                **inventory(names, alive=alive),
            }
        )
    )


def _positive(value: Any, limit: float) -> Any:
    return value if value is not None and 0 < value <= limit else None


async def format_input(request: Request) -> Response:
    """The input normalised, in ``/format_input``'s shape. No LLM rewrites it here."""
    state = app_state(request)
    body = await read_body(request, state.settings, allow_empty=True)
    require_token(state.settings, request, body.fields)
    values = lookup(body.fields)
    return JSONResponse(
        wrap(
            {
                "caption": str(values.get("prompt", "")).strip(),
                "lyrics": str(values.get("lyrics", "")).strip(),
                "bpm": values.get("bpm") if 30 <= (values.get("bpm") or 0) <= 300 else None,
                "key_scale": str(values.get("key_scale", "")).strip(),
                "time_signature": str(values.get("time_signature", "")).strip(),
                "duration": _positive(values.get("audio_duration"), MAX_DURATION_SECONDS),
                "vocal_language": str(values.get("vocal_language", "en")).strip(),
            }
        )
    )


async def create_random_sample(request: Request) -> Response:
    """A random built-in example in upstream's real shapes (spec §9.1): ``simple_mode`` gives
    ``{description, instrumental, vocal_language}``, anything else a full text2music preset."""
    state = app_state(request)
    body = await read_body(request, state.settings, allow_empty=True)
    require_token(state.settings, request, body.fields)
    kind = str(body.fields.get("sample_type") or SIMPLE_MODE)
    example = random_example(SIMPLE_MODE if kind == SIMPLE_MODE else "text2music")
    if example is None:
        return JSONResponse(wrap(None, code=500, error="No example data available"))
    return JSONResponse(wrap(example))


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/v1/stats", stats, methods=["GET"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/model_inventory", model_inventory, methods=["GET"]),
    Route("/v1/init", init, methods=["POST"]),
    Route("/format_input", format_input, methods=["POST"]),
    Route("/create_random_sample", create_random_sample, methods=["POST"]),
]
