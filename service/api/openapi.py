"""The OpenAPI document, generated from msgspec Structs, and the offline ``/docs`` and ``/redoc``.

Every route of the app is listed: the operations below carry request and response schemas
(``msgspec.json.schema_components`` over the Structs of ``openapi_schemas.py``, so docs follow
the code) with examples; a route added later without an entry here still appears, described by
its handler's docstring.

Swagger UI and ReDoc come from the ``openapi-ui-bundles`` package and are served from
``/docs/assets/`` (no CDN): the pages work on a machine without internet access.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from service.api import diffrhythm as dr
from service.api import openai
from service.api.openapi_schemas import (
    AceStepRequest,
    AceStepUpload,
    ChatCompletion,
    DiffRhythmEditForm,
    DiffRhythmGenerateForm,
    EraAJob,
    ErrorDetail,
    FormatInputRequest,
    FormatInputResponse,
    HealthResponse,
    InitRequest,
    InitResponse,
    JobCreated,
    ModelInventoryResponse,
    ModelList,
    QueryResultItem,
    QueryResultRequest,
    QueryResultResponse,
    RandomJobRequest,
    RandomSampleRequest,
    RandomSampleResponse,
    ReleaseTaskResponse,
    StatsResponse,
)
from service.errors import NotFound, SongqueueError

TITLE = "songqueue"
VERSION = "1.0"
DOC_PATHS = frozenset({"/openapi.json", "/docs", "/redoc", "/docs/assets/{name}"})
ASSETS = {  # served name -> (openapi_ui_bundles module, file)
    "swagger-ui-bundle.js": ("swagger_ui", "swagger-ui-bundle.js"),
    "swagger-ui.css": ("swagger_ui", "swagger-ui.css"),
    "favicon-32x32.png": ("swagger_ui", "favicon-32x32.png"),
    "redoc.standalone.js": ("redoc", "redoc.standalone.js"),
    "logo-mini.svg": ("redoc", "logo-mini.svg"),
}
ASSET_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# ReDoc's footer logo is fetched from its CDN; the bundle ships the same file, served locally.
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
ASSET_MAX_AGE = 86400  # seconds browsers may cache an asset

# --- operations ---------------------------------------------------------------------------

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
ACESTEP = "ACE-Step"
DIFFRHYTHM = "DiffRhythm"
GENERATE_EXAMPLE = {
    "prompt": "calm piano ballad, soft strings",
    "lyrics": "[verse]\nQuiet rain on the window",
    "audio_duration": 30,
    "batch_size": 1,
    "audio_format": "mp3",
}
UUID_EXAMPLE = "550e8400-e29b-41d4-a716-446655440000"
STATUS_EXAMPLE = {
    "task_id": UUID_EXAMPLE,
    "status": "completed",
    "progress": 100,
    "message": None,
    "output_path": "/srv/songqueue/outputs/550e8400-e29b-41d4-a716-446655440000/0-42.wav",
    "created_at": "2025-03-01T12:00:00",
    "completed_at": "2025-03-01T12:05:00",
    "error": None,
    "queue_position": 0,
    "output_paths": ["/srv/songqueue/outputs/550e8400-e29b-41d4-a716-446655440000/0-42.wav"],
}


@dataclass(frozen=True)
class Body:
    schema: Any  # a Struct type
    media: tuple[str, ...] = (JSON,)
    example: Any = None
    upload_schema: Any = None  # the multipart variant, when it differs
    required: bool = True


@dataclass(frozen=True)
class Op:
    tag: str
    summary: str
    response: Any = None  # a type for JSON responses
    example: Any = None
    body: Body | None = None
    media: str = JSON  # of the 200 response
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, bool, str], ...] = ()  # (name, required, description)
    description: str = ""
    extra_types: tuple[Any, ...] = field(default_factory=tuple)


ACESTEP_BODY = Body(
    AceStepRequest, (JSON, FORM, MULTIPART), GENERATE_EXAMPLE, upload_schema=AceStepUpload
)
ERROR_TEXT = {
    400: "Bad request: invalid parameters",
    401: "Missing or invalid API key",
    403: "Path outside the allowed directory",
    404: "Not found",
    413: "Body or upload too large",
    415: "Unsupported Content-Type",
    422: "Missing required query parameter",
    429: "Queue full",
    503: "Database busy; retry",
}

OPERATIONS: dict[tuple[str, str], Op] = {
    # --- DiffRhythm API
    ("GET", "/api/health"): Op(
        DIFFRHYTHM, "Health check", dr.Health, msgspec.to_builtins(dr.Health())
    ),
    ("POST", "/api/generate"): Op(
        DIFFRHYTHM,
        "Generate music",
        dr.TaskCreated,
        {
            "task_id": UUID_EXAMPLE,
            "status": "queued",
            "message": "Music generation task queued successfully",
            "queue_position": 1,
        },
        Body(
            DiffRhythmGenerateForm,
            (MULTIPART,),
            {"ref_prompt": "folk, acoustic guitar, harmonica, touching", "audio_length": 95},
        ),
        errors=(400, 401, 413, 429),
        description="Either `ref_audio` or `ref_prompt` must be provided, but not both.",
    ),
    ("POST", "/api/edit"): Op(
        DIFFRHYTHM,
        "Edit music",
        dr.TaskCreated,
        {
            "task_id": UUID_EXAMPLE,
            "status": "queued",
            "message": "Music editing task queued successfully",
            "queue_position": 1,
        },
        Body(
            DiffRhythmEditForm,
            (MULTIPART,),
            {"ref_prompt": "folk", "edit_segments": "[[-1,25],[50.0,-1]]", "audio_length": 95},
        ),
        errors=(400, 401, 413, 429),
        description=(
            "Repaints the union span of `edit_segments` (earliest start to latest end) of "
            "`ref_song`: songqueue repaints one region per job."
        ),
    ),
    ("GET", "/api/status/{task_id}"): Op(
        DIFFRHYTHM, "Get task status", dr.TaskStatus, STATUS_EXAMPLE, errors=(401, 404)
    ),
    ("GET", "/api/download/{task_id}"): Op(
        DIFFRHYTHM,
        "Download result (WAV)",
        media="audio/wav",
        errors=(400, 401, 404),
        description="400 while the task is not completed.",
    ),
    ("DELETE", "/api/tasks/{task_id}"): Op(
        DIFFRHYTHM,
        "Delete a task and its files",
        dr.MessageResponse,
        {"message": f"Task {UUID_EXAMPLE} deleted successfully"},
        errors=(401, 404),
        description="A running task is cancelled first.",
    ),
    # --- ACE-Step era C
    ("POST", "/release_task"): Op(
        ACESTEP,
        "Create a generation task",
        ReleaseTaskResponse,
        {
            "data": {"task_id": UUID_EXAMPLE, "status": "queued", "queue_position": 1},
            "code": 200,
            "error": None,
            "timestamp": 1740830400000,
            "extra": None,
        },
        ACESTEP_BODY,
        errors=(400, 401, 413, 415, 429),
    ),
    ("POST", "/query_result"): Op(
        ACESTEP,
        "Status and results of tasks",
        QueryResultResponse,
        {
            "data": [{"task_id": UUID_EXAMPLE, "status": 0, "result": "[]"}],
            "code": 200,
            "error": None,
            "timestamp": 1740830400000,
            "extra": None,
        },
        Body(QueryResultRequest, (JSON, FORM), {"task_id_list": [UUID_EXAMPLE]}),
        errors=(400, 401),
        extra_types=(QueryResultItem,),
    ),
    ("GET", "/health"): Op(
        ACESTEP,
        "Liveness and loaded model",
        HealthResponse,
        {
            "data": {
                "status": "ok",
                "service": "ACE-Step API",
                "version": "1.0",
                "models_initialized": True,
                "llm_initialized": False,
                "loaded_model": "songqueue-synth-v1",
                "loaded_lm_model": None,
            },
            "code": 200,
            "error": None,
            "timestamp": 1740830400000,
            "extra": None,
        },
    ),
    ("GET", "/v1/stats"): Op(ACESTEP, "Queue statistics", StatsResponse, errors=(401,)),
    ("GET", "/v1/models"): Op(ACESTEP, "Models (OpenRouter list)", ModelList),
    ("GET", "/v1/model_inventory"): Op(
        ACESTEP, "Models (native)", ModelInventoryResponse, errors=(401,)
    ),
    ("POST", "/v1/init"): Op(
        ACESTEP,
        "Report the loaded model (nothing to load on demand)",
        InitResponse,
        body=Body(InitRequest, (JSON, FORM), {"model": "songqueue-synth-v1"}, required=False),
        errors=(401,),
    ),
    ("POST", "/format_input"): Op(
        ACESTEP,
        "Normalise caption, lyrics and metadata",
        FormatInputResponse,
        body=Body(
            FormatInputRequest, (JSON, FORM), {"prompt": "lofi", "lyrics": ""}, required=False
        ),
        errors=(401,),
    ),
    ("POST", "/create_random_sample"): Op(
        ACESTEP,
        "A random built-in example",
        RandomSampleResponse,
        body=Body(
            RandomSampleRequest, (JSON, FORM), {"sample_type": "simple_mode"}, required=False
        ),
        errors=(401,),
    ),
    ("GET", "/v1/audio"): Op(
        ACESTEP,
        "Download a generated file",
        media="audio/*",
        errors=(401, 403, 404, 422),
        query=(
            ("path", True, "Absolute server path from a result's /v1/audio?path= URL"),
            ("ai_token", False, "API key, for <audio src> tags that cannot send headers"),
        ),
    ),
    # --- ACE-Step era A
    ("POST", "/v1/music/generate"): Op(
        ACESTEP,
        "Create a job (era A)",
        JobCreated,
        {"job_id": UUID_EXAMPLE, "status": "queued", "queue_position": 1},
        ACESTEP_BODY,
        errors=(400, 401, 413, 415, 429),
    ),
    ("POST", "/v1/music/random"): Op(
        ACESTEP,
        "Create a job from a random example (era A)",
        JobCreated,
        body=Body(RandomJobRequest, (JSON,), {"thinking": False}, required=False),
        errors=(401, 429),
    ),
    ("GET", "/v1/jobs/{job_id}"): Op(ACESTEP, "Poll a job (era A)", EraAJob, errors=(401, 404)),
    ("POST", "/v1/jobs/{job_id}/cancel"): Op(
        ACESTEP,
        "Cancel a job",
        EraAJob,
        errors=(401, 404),
        description="Queued: cancelled at once. Running: stops at its next step.",
    ),
    ("POST", "/v1/chat/completions"): Op(
        "OpenRouter",
        "Generate music as a chat completion",
        ChatCompletion,
        body=Body(
            openai.ChatRequest,
            (JSON,),
            {
                "model": "acestep/songqueue-synth-v1",
                "messages": [{"role": "user", "content": "<prompt>lofi piano</prompt>"}],
                "audio_config": {"duration": 10, "format": "mp3"},
            },
        ),
        errors=(400, 401, 429, 500, 504),
        description="Waits for the job; `stream: true` answers with server-sent events.",
    ),
}


# --- building the document ------------------------------------------------------------------------


def _methods(route: Route) -> list[str]:
    return sorted(m for m in (route.methods or {"GET"}) if m != "HEAD")


def _summary(route: Route) -> str:
    doc = (route.endpoint.__doc__ or route.path).replace("`", "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else route.path


def _error_responses(codes: tuple[int, ...]) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/ErrorDetail"}
    return {
        str(code): {
            "description": ERROR_TEXT.get(code, "Error"),
            "content": {JSON: {"schema": ref}},
        }
        for code in codes
    }


def build_openapi(routes: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes`` (the app's own list)."""
    types: list[Any] = [ErrorDetail]
    for op in OPERATIONS.values():
        types += [t for t in (op.response,) if t is not None]
        if op.body is not None:
            types += [t for t in (op.body.schema, op.body.upload_schema) if t is not None]
        types += list(op.extra_types)
    refs, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    schema_of = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or route.path in DOC_PATHS:
            continue
        for method in _methods(route):
            op = OPERATIONS.get((method, route.path))
            item = (
                _operation(route, method, op, schema_of)
                if op is not None
                else _undocumented(route, method)
            )
            paths.setdefault(route.path, {})[method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "A music-generation job server speaking the ACE-Step 1.5 and DiffRhythm APIs "
                'over one durable queue. Errors are `{"detail": ...}`.'
            ),
        },
        "tags": [
            {"name": DIFFRHYTHM, "description": "DiffRhythm API (/api/...)"},
            {"name": ACESTEP, "description": "ACE-Step 1.5 API (era C and era A routes)"},
            {"name": "OpenRouter", "description": "ACE-Step's OpenAI-style chat completions"},
        ],
        "paths": paths,
        "security": [{}, {"bearer": []}],  # a key is needed only when one is configured
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.param_convertors
    ]


def _operation(route: Route, method: str, op: Op, schema_of: dict[Any, Any]) -> dict[str, Any]:
    params = _path_parameters(route) + [
        {
            "name": name,
            "in": "query",
            "required": req,
            "description": desc,
            "schema": {"type": "string"},
        }
        for name, req, desc in op.query
    ]
    ok: dict[str, Any] = {"description": "OK"}
    if op.response is not None:
        content: dict[str, Any] = {"schema": schema_of[op.response]}
        if op.example is not None:
            content["example"] = op.example
        ok["content"] = {op.media: content}
    else:
        ok["content"] = {op.media: {"schema": {"type": "string", "format": "binary"}}}
    item: dict[str, Any] = {
        "tags": [op.tag],
        "summary": op.summary,
        "operationId": f"{method.lower()}_{route.name}",
        "parameters": params,
        "responses": {"200": ok, **_error_responses(op.errors)},
    }
    if op.description:
        item["description"] = op.description
    if op.body is not None:
        body_content = {}
        for media in op.body.media:
            schema = op.body.schema
            if media == MULTIPART and op.body.upload_schema is not None:
                schema = op.body.upload_schema
            entry: dict[str, Any] = {"schema": schema_of[schema]}
            if op.body.example is not None:
                entry["example"] = op.body.example
            body_content[media] = entry
        item["requestBody"] = {"required": op.body.required, "content": body_content}
    return item


def _undocumented(route: Route, method: str) -> dict[str, Any]:
    return {
        "tags": ["other"],
        "summary": _summary(route),
        "operationId": f"{method.lower()}_{route.name}",
        "parameters": _path_parameters(route),
        "responses": {"200": {"description": "OK"}},
    }


# --- routes ---------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()


async def openapi_json(request: Request) -> Response:
    """The OpenAPI document (built once per app, from its routes)."""
    cached = getattr(request.app.state, "openapi_bytes", None)
    if cached is None:
        cached = _encoder.encode(build_openapi(request.app.routes))
        request.app.state.openapi_bytes = cached
    return Response(cached, media_type="application/json")


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


SWAGGER_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{p}/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="{p}/docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="{p}/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({{url: "{p}/openapi.json", dom_id: "#swagger-ui",
deepLinking: true, validatorUrl: null, presets: [SwaggerUIBundle.presets.apis],
layout: "BaseLayout"}});</script>
</body></html>
"""
REDOC_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="{p}/openapi.json"></redoc>
<script src="{p}/docs/assets/redoc.standalone.js"></script></body></html>
"""


async def swagger_ui(request: Request) -> Response:
    """Swagger UI, with assets served locally."""
    return HTMLResponse(SWAGGER_HTML.format(title=TITLE, p=_prefix(request)))


async def redoc(request: Request) -> Response:
    """ReDoc, with assets served locally."""
    return HTMLResponse(REDOC_HTML.format(title=TITLE, p=_prefix(request)))


class AssetsMissing(SongqueueError):
    """API documentation assets are not installed (pip install openapi-ui-bundles)."""

    status_code = 503


def asset_path(name: str) -> Path:
    """A vendored Swagger UI / ReDoc file; only the names in ``ASSETS``."""
    if name not in ASSETS:
        raise NotFound("Not Found")
    try:
        import openapi_ui_bundles
    except ImportError as exc:
        raise AssetsMissing() from exc
    module, filename = ASSETS[name]
    return Path(getattr(openapi_ui_bundles, module).static_path) / filename


@functools.cache
def _redoc_bundle(prefix: str) -> bytes:
    """ReDoc's bundle with its one CDN URL pointed at our copy of the logo."""
    raw = asset_path("redoc.standalone.js").read_bytes()
    return raw.replace(REDOC_CDN_LOGO, f"{prefix}/docs/assets/logo-mini.svg".encode())


async def asset(request: Request) -> Response:
    """A Swagger UI or ReDoc file from the installed package (cacheable for a day)."""
    name = request.path_params["name"]
    path = asset_path(name)
    media_type = ASSET_TYPES.get(path.suffix, "application/octet-stream")
    headers = {"Cache-Control": f"public, max-age={ASSET_MAX_AGE}"}
    if name == "redoc.standalone.js":
        body = await asyncio.to_thread(_redoc_bundle, _prefix(request))
        return Response(body, media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", swagger_ui, methods=["GET"]),
    Route("/redoc", redoc, methods=["GET"]),
    Route("/docs/assets/{name}", asset, methods=["GET"]),
]
