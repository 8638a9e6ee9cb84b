"""DiffRhythm-API routes (seeds/diffrhythm-api.md) on songqueue's job store and workers.

``/api/health``, ``/api/generate``, ``/api/edit``, ``/api/status/{task_id}``,
``/api/download/{task_id}`` and ``DELETE /api/tasks/{task_id}``, with the seed's parameters,
response keys, statuses and ``{"detail": ...}`` errors (400 bad parameters, 404 unknown task).

Mapping onto a ``GenerationRequest``: generate is ``text2music`` with ``lyrics`` = the LRC text
(timestamps kept: the engines read them), ``prompt`` = ``ref_prompt``, the ``ref_audio`` upload
as ``reference_audio_path``, ``audio_duration`` = ``audio_length``, ``batch_size`` =
``batch_infer_num``, WAV output. Edit is ``repaint`` of the ``ref_song`` upload.

Several edit segments: songqueue repaints one region per job, so an edit repaints the *union
span* of its segments, from the earliest start to the latest end (``-1`` = the song's start or
end): ``[[-1,25],[50,-1]]`` repaints the whole song, ``[[10,20],[30,40]]`` repaints 10-40 s.
Chaining one job per segment would keep the audio between segments, but it needs job
dependencies the queue does not have; the status ``message`` states the span that was used.

``chunked`` (VAE decoding in chunks to fit 8 GB) is accepted and validated; songqueue's
engines choose their own decoding. Statuses: queued -> queued, running -> processing,
succeeded -> completed, failed and cancelled -> failed. Times are ISO 8601 in the server's local
time, to the second, as upstream's ``datetime.now().isoformat()`` clients compare against.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from models.audio import MEDIA_TYPES
from service.auth import require_header, require_token
from service.errors import BadRequest, NotFound
from service.render import result_paths
from service.requests import Body, read_body
from service.retention import remove_job_files
from service.schemas import MAX_BATCH_SIZE, Job
from service.state import AppState, app_state
from service.store import queue

API_NAME = "diffrhythm"  # jobs.api of the jobs submitted here
VERSION = "1.0.0"
MIN_LENGTH_SECONDS = 95  # DiffRhythm-base's fixed length
MAX_LENGTH_SECONDS = 285  # DiffRhythm-full's longest song
LYRICS_MAX_BYTES = 256 * 1024  # an LRC file; the request's lyrics are capped again in chars
DELETE_WAIT_SECONDS = 15.0  # how long DELETE waits for a running job to stop at its next step
DELETE_POLL_SECONDS = 0.1

# --- request and response shapes (also the OpenAPI schemas, service/api/openapi.py) ----------

AudioLength = Annotated[
    int,
    msgspec.Meta(
        ge=MIN_LENGTH_SECONDS,
        le=MAX_LENGTH_SECONDS,
        description="Audio length in seconds: 95 (DiffRhythm-base) or 96-285 (DiffRhythm-full).",
    ),
]
BatchInferNum = Annotated[
    int,
    msgspec.Meta(ge=1, le=MAX_BATCH_SIZE, description="Number of songs generated in the job."),
]
RefPrompt = Annotated[
    str,
    msgspec.Meta(
        max_length=10_000,
        description="Text prompt for style; give this or ref_audio, not both.",
        examples=["folk, acoustic guitar, harmonica, touching"],
    ),
]
EditSegments = Annotated[
    str,
    msgspec.Meta(
        description=(
            "JSON list of [start, end] pairs in seconds; -1 is the song's start or end. "
            "songqueue repaints the union span of the segments in one pass."
        ),
        examples=["[[-1,25],[50.0,-1]]"],
    ),
]
P = TypeVar("P", bound="GenerateParams")
TaskStatusName = Literal["queued", "processing", "completed", "failed"]


class GenerateParams(msgspec.Struct, kw_only=True):
    """The text fields of ``POST /api/generate`` (upstream's FastAPI ``Form`` parameters)."""

    ref_prompt: RefPrompt | None = None
    audio_length: AudioLength = MIN_LENGTH_SECONDS
    chunked: Annotated[
        bool, msgspec.Meta(description="Chunked VAE decoding (for 8 GB GPUs); accepted as is.")
    ] = True
    batch_infer_num: BatchInferNum = 1


class EditParams(GenerateParams, kw_only=True):
    """The text fields of ``POST /api/edit``."""

    edit_segments: EditSegments


class TaskCreated(msgspec.Struct, kw_only=True):
    """A task was queued."""

    task_id: str
    status: TaskStatusName
    message: str
    queue_position: int = 0  # additive: 1-based place in the queue


class TaskStatus(msgspec.Struct, kw_only=True):
    """A task as ``GET /api/status/{task_id}`` reports it."""

    task_id: str
    status: TaskStatusName
    progress: Annotated[int, msgspec.Meta(ge=0, le=100, description="Percent done.")]
    message: str | None
    output_path: str | None  # absolute path of the (first) WAV once completed
    created_at: str
    completed_at: str | None
    error: str | None
    queue_position: int = 0  # additive
    output_paths: list[str] = msgspec.field(default_factory=list)  # additive: every file


class Health(msgspec.Struct, kw_only=True):
    status: str = "healthy"
    message: str = "DiffRhythm API is running"
    version: str = VERSION


class MessageResponse(msgspec.Struct, kw_only=True):
    message: str


_encoder = msgspec.json.Encoder()


def json_response(value: msgspec.Struct, status_code: int = 200) -> Response:
    return Response(_encoder.encode(value), status_code, media_type="application/json")


# --- parsing ------------------------------------------------------------------------------

FIELD_HINTS = {
    "audio_length": "audio_length must be 95 or an integer from 96 to 285 (seconds)",
    "batch_infer_num": f"batch_infer_num must be an integer from 1 to {MAX_BATCH_SIZE}",
    "chunked": "chunked must be true or false",
    "ref_prompt": "ref_prompt is too long",
    "edit_segments": "edit_segments is required, e.g. [[-1,25],[50.0,-1]]",
}
TIME_TAG = re.compile(r"^\[(\d{1,3}):(\d{1,2})(?:[.:]\d{1,3})?\]")
ANY_TAG = re.compile(r"^\[[^\]\n]*\]")
UPLOAD_NAMES = {"src_audio_path": "ref_song", "reference_audio_path": "ref_audio"}


def _params(fields: dict[str, Any], kind: type[P]) -> P:
    text = {k: v for k, v in fields.items() if isinstance(v, str) and v.strip() != ""}
    try:
        return msgspec.convert(text, kind, strict=False)
    except msgspec.ValidationError as exc:
        found = re.search(r"\$\.(\w+)|field `(\w+)`", str(exc))
        name = (found.group(1) or found.group(2)) if found else ""
        hint = FIELD_HINTS.get(name, "invalid parameter")
        raise BadRequest(f"{hint} ({exc})") from exc


def _upload(body: Body, name: str) -> UploadFile | None:
    """A file part, or None when absent or sent empty (Swagger UI's "send empty value")."""
    upload = body.uploads.get(name)
    if upload is not None and (upload.filename or upload.size):
        return upload
    value = body.fields.get(name)
    if isinstance(value, str) and value.strip():
        raise BadRequest(f"{name} must be a file upload")
    return None


def parse_lrc(text: str) -> str:
    """The LRC text, checked: every non-blank line opens with a ``[..]`` tag and at least one
    is a time tag like ``[00:12.34]``. Blank text is an instrumental."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if not lines:
        return ""
    untagged = next((line for line in lines if not ANY_TAG.match(line)), None)
    if untagged is not None or not any(TIME_TAG.match(line) for line in lines):
        example = f" (line {untagged[:40]!r} has no [mm:ss.xx] time tag)" if untagged else ""
        raise BadRequest(f"lyrics must be an LRC file with [mm:ss.xx] time tags{example}")
    return "\n".join(lines)


async def read_lyrics(body: Body) -> str:
    upload = body.uploads.get("lyrics")
    if upload is not None:
        raw = await upload.read(LYRICS_MAX_BYTES + 1)
        if len(raw) > LYRICS_MAX_BYTES:
            raise BadRequest(f"lyrics file is larger than {LYRICS_MAX_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("lyrics must be a UTF-8 text file in LRC format") from exc
    elif isinstance(body.fields.get("lyrics"), str):
        text = body.fields["lyrics"]  # lenient: the LRC text sent as a plain form field
    else:
        raise BadRequest("lyrics file (.lrc) is required")
    return parse_lrc(text)


def parse_segments(raw: str, audio_length: float) -> tuple[float, float | None]:
    """The union span of ``[[start, end], ...]`` (-1 = song start / end) as (start, end|None)."""
    try:
        segments = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"edit_segments is not valid JSON: {raw[:80]!r}") from exc
    if not isinstance(segments, list) or not segments:
        raise BadRequest("edit_segments must be a non-empty list like [[-1,25],[50.0,-1]]")
    starts: list[float] = []
    ends: list[float | None] = []
    for seg in segments:
        ok = (
            isinstance(seg, list)
            and len(seg) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in seg)
        )
        if not ok:
            raise BadRequest(f"each edit segment must be [start, end] in seconds, got {seg!r}")
        start, end = float(seg[0]), float(seg[1])
        if (start < 0 and start != -1) or (end < 0 and end != -1):
            raise BadRequest(f"edit segment {seg!r}: times are seconds >= 0, or -1")
        start = max(start, 0.0)
        if end != -1 and end <= start:
            raise BadRequest(f"edit segment {seg!r}: end must be after start")
        if start >= audio_length:
            raise BadRequest(f"edit segment {seg!r} starts after audio_length ({audio_length} s)")
        starts.append(start)
        ends.append(None if end == -1 or end >= audio_length else end)
    if any(end is None for end in ends):
        return min(starts), None
    return min(starts), max(e for e in ends if e is not None)


async def _submit(state: AppState, request: Request, body: Body) -> Job:
    """Enqueue through the shared path, naming the DiffRhythm upload fields in errors."""
    try:
        return await state.submit(body, api=API_NAME, request=request)
    except BadRequest as exc:
        detail = exc.detail
        for ours, theirs in UPLOAD_NAMES.items():
            detail = detail.replace(ours, theirs)
        raise BadRequest(detail) from exc


async def _request_body(
    request: Request, kind: type[GenerateParams]
) -> tuple[AppState, Body, Any, dict[str, Any]]:
    """Parse the multipart form into checked params and the fields of a GenerationRequest."""
    state = app_state(request)
    body = await read_body(request, state.settings)
    require_token(state.settings, request, body.fields)
    params = _params(body.fields, kind)
    ref_audio = _upload(body, "ref_audio")
    if ref_audio is not None and params.ref_prompt:
        raise BadRequest("Provide either ref_audio or ref_prompt, not both")
    if ref_audio is None and not params.ref_prompt:
        raise BadRequest("Either ref_audio or ref_prompt must be provided")
    fields: dict[str, Any] = {
        "lyrics": await read_lyrics(body),
        "prompt": (params.ref_prompt or "").strip(),
        "audio_duration": params.audio_length,
        "batch_size": params.batch_infer_num,
        "audio_format": "wav",
        "task_type": "text2music",
    }
    uploads = {} if ref_audio is None else {"reference_audio": ref_audio}
    return state, Body(fields, uploads), params, body.uploads


async def _created(state: AppState, job: Job, message: str) -> Response:
    async with state.db.read() as conn:
        position = await queue.queue_position(conn, job)
    return json_response(
        TaskCreated(task_id=job.job_id, status="queued", message=message, queue_position=position)
    )


# --- routes ---------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """Liveness, open like ACE-Step's ``/health``."""
    return json_response(Health())


async def generate(request: Request) -> Response:
    """A song from an LRC file and a style reference (audio or prompt)."""
    state, body, _, _ = await _request_body(request, GenerateParams)
    job = await _submit(state, request, body)
    return await _created(state, job, "Music generation task queued successfully")


async def edit(request: Request) -> Response:
    """Repaint segments of ``ref_song`` (their union span; see the module docstring)."""
    state, body, params, uploads = await _request_body(request, EditParams)
    song = uploads.get("ref_song")
    if song is None or not (song.filename or song.size):
        raise BadRequest("ref_song file is required")
    start, end = parse_segments(params.edit_segments, params.audio_length)
    body.fields |= {"task_type": "repaint", "repainting_start": start}
    if end is not None:
        body.fields["repainting_end"] = end
    body.uploads["src_audio"] = song
    job = await _submit(state, request, body)
    return await _created(state, job, "Music editing task queued successfully")


STATUS_NAMES: dict[str, TaskStatusName] = {
    "queued": "queued",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "failed",
}


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).isoformat(timespec="seconds")


def _span(job: Job) -> str:
    req = job.request
    end = "the end" if req.repainting_end is None else f"{req.repainting_end:g} s"
    return f"repainted {req.repainting_start:g} s to {end} (the union of the edit segments)"


def task_status(state: AppState, job: Job, position: int) -> TaskStatus:
    """Render a job in the DiffRhythm API's status shape (pure)."""
    status = STATUS_NAMES.get(job.status, "failed")
    paths = [str(p) for p in result_paths(state.settings, job.result)] if job.result else []
    completed = status == "completed"
    message: str | None = None
    if status == "queued":
        message = f"Waiting in queue (position {position})" if position else "Waiting in queue"
    elif status == "processing":
        message = f"Processing: {job.stage}"
    elif completed and job.task_type == "repaint" and job.api == API_NAME:
        message = _span(job)
    error = None
    if status == "failed":
        error = job.error or ("cancelled by request" if job.status == "cancelled" else "failed")
    return TaskStatus(
        task_id=job.job_id,
        status=status,
        progress=100 if completed else min(int(job.progress * 100), 99),
        message=message,
        output_path=paths[0] if completed and paths else None,
        created_at=iso(job.created_at) or "",
        completed_at=iso(job.finished_at),
        error=error,
        queue_position=position,
        output_paths=paths if completed else [],
    )


async def _job(state: AppState, task_id: str) -> Job:
    found = await queue.get_jobs(state.db, [task_id])
    if task_id not in found:
        raise NotFound("Task not found")
    return found[task_id]


async def status(request: Request) -> Response:
    """The task's status, progress, output path and times."""
    state = app_state(request)
    require_header(state.settings, request)
    job = await _job(state, request.path_params["task_id"])
    async with state.db.read() as conn:
        position = await queue.queue_position(conn, job)
    return json_response(task_status(state, job, position))


async def download(request: Request) -> Response:
    """The generated WAV (the first one when ``batch_infer_num`` > 1)."""
    state = app_state(request)
    require_header(state.settings, request)
    job = await _job(state, request.path_params["task_id"])
    if job.status != "succeeded" or job.result is None:
        raise BadRequest(f"Task is not completed (status: {STATUS_NAMES.get(job.status)})")
    paths = result_paths(state.settings, job.result)
    if not paths:
        raise NotFound("Output file not found")
    path = await state.output_file(str(paths[0]))  # fetched from shared storage when needed
    media_type = MEDIA_TYPES.get(path.suffix.lstrip(".").lower(), "application/octet-stream")
    return FileResponse(path, media_type=media_type, filename=f"{job.job_id}{path.suffix}")


async def delete_task(request: Request) -> Response:
    """Remove a task and its files; a running task is cancelled and stopped first."""
    state = app_state(request)
    require_header(state.settings, request)
    task_id = request.path_params["task_id"]
    job = await _job(state, task_id)
    if job.status in ("queued", "running"):
        job = await queue.cancel(state.db, task_id)
        deadline = time.monotonic() + DELETE_WAIT_SECONDS
        while job.status == "running" and time.monotonic() < deadline:
            await asyncio.sleep(DELETE_POLL_SECONDS)
            job = await _job(state, task_id)
    deleted = await queue.delete_job(state.db, task_id)
    if deleted is None:
        raise NotFound("Task not found")
    await remove_job_files(state.settings, [deleted], state.store)
    return json_response(MessageResponse(message=f"Task {task_id} deleted successfully"))


routes = [
    Route("/api/health", health, methods=["GET"]),
    Route("/api/generate", generate, methods=["POST"]),
    Route("/api/edit", edit, methods=["POST"]),
    Route("/api/status/{task_id}", status, methods=["GET"]),
    Route("/api/download/{task_id}", download, methods=["GET"]),
    Route("/api/tasks/{task_id}", delete_task, methods=["DELETE"]),
]
