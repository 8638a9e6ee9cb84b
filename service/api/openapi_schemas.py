"""The request and response shapes of every route, as msgspec Structs, for the OpenAPI
document (``service/api/openapi.py``). The DiffRhythm shapes are the very Structs
``service/api/diffrhythm.py`` parses and renders with; the ACE-Step request is derived from the
parser's table (``service.requests.FIELDS``) and ``GenerationRequest``'s types, so a new
parameter shows up without editing this file. The ACE-Step responses mirror
``service/render.py`` and ``service/api/acestep*.py``; a test converts live responses into them.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec

from service.api import diffrhythm as dr
from service.requests import FIELDS
from service.schemas import GenerationRequest

T = TypeVar("T")

# --- shared shapes ---------------------------------------------------------------------------


class ErrorDetail(msgspec.Struct):
    """Every 4xx error: ``{"detail": "<message>"}``."""

    detail: str


FILE_SCHEMA = {"format": "binary", "contentMediaType": "application/octet-stream"}


def upload(description: str) -> Any:
    """A multipart file part, shown as a file picker by Swagger UI."""
    return Annotated[str, msgspec.Meta(description=description, extra_json_schema=FILE_SCHEMA)]


UploadedFile = upload("A file upload (multipart/form-data).")
LrcFile = upload("Lyrics file in .lrc format: lines start with [mm:ss.xx] time tags.")
RefAudioFile = upload("Reference audio file for style; give this or ref_prompt, not both.")
RefSongFile = upload("The song to edit (wav, mp3, flac, ogg).")


class Envelope(msgspec.Struct, Generic[T], kw_only=True):
    """ACE-Step's envelope (era C): the payload is ``data``; ``code`` can be 500 under HTTP 200."""

    data: T
    code: int = 200
    error: str | None = None
    timestamp: Annotated[int, msgspec.Meta(description="epoch milliseconds")]
    extra: None = None


# --- ACE-Step requests: derived from the parser's own table ------------------------------------

KIND_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool}


def _acestep_fields() -> list[tuple[str, Any, Any]]:
    hints = typing.get_type_hints(GenerationRequest, include_extras=True)
    defaults = {f.name: f.default for f in msgspec.structs.fields(GenerationRequest)}
    out: list[tuple[str, Any, Any]] = []
    for name, (aliases, kind) in FIELDS.items():
        typ = int | str if kind == "seed" else hints.get(name, KIND_TYPES.get(kind, str))
        note = f"Aliases: {', '.join(aliases[1:])}." if len(aliases) > 1 else ""
        default = defaults.get(name)
        if default is msgspec.NODEFAULT:
            default = None
        if default is None:
            typ = typ | None
        out.append((name, Annotated[typ, msgspec.Meta(description=note or None)], default))
    out.append(("ai_token", str | None, None))
    return out


AceStepRequest = msgspec.defstruct(
    "AceStepRequest",
    _acestep_fields(),
    kw_only=True,
    namespace={
        "__doc__": "A generation job (/release_task, /v1/music/generate). Accepted as JSON, "
        "urlencoded or multipart; values may be strings (coerced); unknown keys are ignored. "
        "`ai_token` authenticates when an API key is set."
    },
)
AceStepUpload = msgspec.defstruct(
    "AceStepUpload",
    [
        ("src_audio", upload("Source song (cover, repaint)") | None, None),
        ("reference_audio", upload("Style reference audio") | None, None),
    ],
    bases=(AceStepRequest,),
    kw_only=True,
    namespace={"__doc__": "The multipart form: the JSON fields plus uploaded audio files."},
)


class ReleaseTaskData(msgspec.Struct):
    task_id: str
    status: str
    queue_position: int


class QueryResultRequest(msgspec.Struct, kw_only=True):
    """Ids to look up; a JSON string of a list is accepted too."""

    task_id_list: list[str] | str
    ai_token: str | None = None


class QueryResultEntry(msgspec.Struct, kw_only=True):
    """One task. ``status``: 0 queued or running, 1 succeeded, 2 failed. ``result`` is a JSON
    string of a list of ``QueryResultItem`` (one per audio file once succeeded)."""

    task_id: str
    status: Literal[0, 1, 2]
    result: str
    progress_text: str | None = None


class QueryResultItem(msgspec.Struct, kw_only=True):
    """An element of ``json.loads(entry.result)``; ``file`` and ``url`` are /v1/audio URLs."""

    file: str
    url: str
    wave: str
    status: Literal[0, 1, 2]
    create_time: int
    env: str
    prompt: str
    lyrics: str
    metas: dict[str, Any]
    progress: float
    stage: str
    error: str | None = None
    generation_info: str | None = None
    seed_value: str | None = None
    lm_model: str | None = None
    dit_model: str | None = None
    queue_position: int | None = None
    eta_seconds: float | None = None


class AceStepHealth(msgspec.Struct, kw_only=True):
    status: str
    service: str
    version: str
    models_initialized: bool = False
    llm_initialized: bool = False
    loaded_model: str | None = None
    loaded_lm_model: str | None = None


class JobCounts(msgspec.Struct):
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int


class Stats(msgspec.Struct, kw_only=True):
    jobs: JobCounts
    queue_size: int
    queue_maxsize: int
    avg_job_seconds: float
    workers: int | None = None


class NativeModel(msgspec.Struct, kw_only=True):
    name: str
    is_default: bool
    is_loaded: bool = False
    supported_task_types: list[str] = msgspec.field(default_factory=list)


class OpenRouterModel(msgspec.Struct, kw_only=True):
    id: str
    name: str
    created: int
    input_modalities: list[str]
    output_modalities: list[str]
    context_length: int
    max_output_length: int
    pricing: dict[str, str]
    description: str
    architecture: None = None


class ModelList(msgspec.Struct, kw_only=True):
    """OpenRouter's list, as upstream serves it, plus the native keys older clients read."""

    object: str
    data: list[OpenRouterModel]
    models: list[NativeModel]
    default_model: str


class ModelInventory(msgspec.Struct, kw_only=True):
    models: list[NativeModel]
    default_model: str
    lm_models: list[dict[str, Any]]
    loaded_lm_model: str | None
    llm_initialized: bool


class InitRequest(msgspec.Struct, kw_only=True):
    model: str | None = None
    slot: Annotated[int, msgspec.Meta(ge=1, le=3)] | None = None
    init_llm: bool | None = None
    lm_model_path: str | None = None
    ai_token: str | None = None


class InitData(ModelInventory, kw_only=True):
    message: str
    slot: int
    loaded_model: str


class FormatInputRequest(msgspec.Struct, kw_only=True):
    prompt: str = ""
    lyrics: str = ""
    temperature: float | None = None
    param_obj: dict[str, Any] | str | None = None
    ai_token: str | None = None


class FormatInputData(msgspec.Struct, kw_only=True):
    caption: str
    lyrics: str
    bpm: int | None
    key_scale: str
    time_signature: str
    duration: float | None
    vocal_language: str


class RandomSampleRequest(msgspec.Struct, kw_only=True):
    sample_type: str = "simple_mode"
    ai_token: str | None = None


class RandomJobRequest(msgspec.Struct, kw_only=True):
    thinking: bool = True


class JobCreated(msgspec.Struct):
    job_id: str
    status: str
    queue_position: int


class EraAResult(msgspec.Struct, kw_only=True):
    first_audio_path: str | None
    second_audio_path: str | None
    audio_paths: list[str]
    generation_info: str
    status_message: str
    seed_value: str
    metas: dict[str, Any]
    bpm: int | None
    duration: float | None
    genres: str | None
    keyscale: str | None
    timesignature: str | None
    lm_model: str | None
    dit_model: str | None


class EraAJob(msgspec.Struct, kw_only=True):
    """``GET /v1/jobs/{job_id}``: ACE-Step's JobResponse plus songqueue's progress fields."""

    job_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    created_at: float
    started_at: float | None
    finished_at: float | None
    queue_position: int
    eta_seconds: float | None
    avg_job_seconds: float | None
    result: EraAResult | None
    error: str | None
    eta_start_seconds: float | None = None
    progress: float = 0.0
    stage: str = ""
    steps_done: int = 0
    steps_total: int = 0
    attempts: int = 0
    task_type: str = "text2music"
    cancelled: bool = False


class ReleaseTaskResponse(Envelope[ReleaseTaskData]):
    """Wrapped ``{task_id, status, queue_position}``."""


class QueryResultResponse(Envelope[list[QueryResultEntry]]):
    """Wrapped list, in request order; unknown ids read as status 0 with result "[]"."""


class HealthResponse(Envelope[AceStepHealth]):
    """Wrapped liveness; always open."""


class StatsResponse(Envelope[Stats]):
    """Wrapped job counts and queue size."""


class ModelInventoryResponse(Envelope[ModelInventory]):
    """Wrapped native model list."""


class InitResponse(Envelope[InitData]):
    """Wrapped model report."""


class FormatInputResponse(Envelope[FormatInputData]):
    """Wrapped normalised input."""


class RandomSampleResponse(Envelope[dict[str, Any] | None]):
    """Wrapped example: ``{description, instrumental, vocal_language}`` for ``simple_mode``,
    else a text2music preset."""


class ChatCompletion(msgspec.Struct, kw_only=True):
    """OpenAI's chat.completion; the first audio is in ``choices[0].message.audio``."""

    id: str
    object: str
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]


# --- DiffRhythm multipart forms (the parsed text fields plus the files) ---------------------


class DiffRhythmGenerateForm(dr.GenerateParams, kw_only=True):
    """``POST /api/generate``: exactly one of ``ref_audio`` and ``ref_prompt``."""

    lyrics: LrcFile
    ref_audio: RefAudioFile | None = None


class DiffRhythmEditForm(dr.EditParams, kw_only=True):
    """``POST /api/edit``: the song to edit, the segments, and one style reference."""

    lyrics: LrcFile
    ref_song: RefSongFile
    ref_audio: RefAudioFile | None = None
