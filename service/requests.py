"""Any request body (JSON, urlencoded, multipart, raw) into one ``GenerationRequest``.

The rules are ACE-Step's (spec/acestep-api.md §3, §4): aliases looked up in the body, then
``param_obj``, then the first truthy ``metas``-like object; the first non-None value wins;
lax coercion where clients send text. Where ACE-Step answered a 500, we answer a 400 with
``{"detail": ...}``: no client depends on a 500.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
from starlette.datastructures import UploadFile
from starlette.requests import Request

from models.audio import probe_duration
from models.engine import EngineInputError
from service.config import Settings
from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from service.files import save_upload, validate_source_path
from service.schemas import (
    DEFAULT_DURATION_SECONDS,
    MAX_DURATION_SECONDS,
    MIN_DURATION_SECONDS,
    GenerationRequest,
)

MAX_FORM_FILES = 4
MAX_FORM_FIELDS = 200

# canonical name -> (aliases in lookup order, coercion)
FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "prompt": (("prompt", "caption"), "str"),
    "lyrics": (("lyrics",), "str"),
    "thinking": (("thinking",), "bool"),
    "sample_mode": (("sample_mode", "sampleMode"), "bool"),
    "sample_query": (("sample_query", "sampleQuery", "description", "desc"), "str"),
    "use_format": (("use_format", "useFormat", "format"), "bool"),
    "model": (("model", "model_name", "modelName", "dit_model", "ditModel"), "str"),
    "bpm": (("bpm",), "int"),
    "key_scale": (("key_scale", "keyscale", "keyScale", "key"), "str"),
    "time_signature": (("time_signature", "timesignature", "timeSignature"), "str"),
    "audio_duration": (
        ("audio_duration", "duration", "audioDuration", "target_duration", "targetDuration"),
        "float",
    ),
    "vocal_language": (("vocal_language", "vocalLanguage", "language"), "str"),
    "inference_steps": (("inference_steps", "inferenceSteps"), "int"),
    "guidance_scale": (("guidance_scale", "guidanceScale"), "float"),
    "use_random_seed": (("use_random_seed", "useRandomSeed"), "bool"),
    "seed": (("seed",), "seed"),
    "batch_size": (("batch_size", "batchSize"), "int"),
    "repainting_start": (("repainting_start", "repaintingStart"), "float"),
    "repainting_end": (("repainting_end", "repaintingEnd"), "float"),
    "instruction": (("instruction",), "str"),
    "audio_cover_strength": (
        ("audio_cover_strength", "audioCoverStrength", "cover_strength", "coverStrength"),
        "float",
    ),
    "reference_audio_path": (
        ("reference_audio_path", "ref_audio_path", "referenceAudioPath", "refAudioPath"),
        "str",
    ),
    "src_audio_path": (
        ("src_audio_path", "ctx_audio_path", "sourceAudioPath", "srcAudioPath", "ctxAudioPath"),
        "str",
    ),
    "task_type": (("task_type", "taskType"), "str"),
    "audio_format": (("audio_format", "audioFormat"), "str"),
    "use_cot_caption": (("use_cot_caption", "cot_caption", "cot-caption"), "bool"),
    "use_cot_language": (("use_cot_language", "cot_language", "cot-language"), "bool"),
    "lm_backend": (("lm_backend",), "str"),
}
NESTED_KEYS = ("metas", "meta", "metadata", "user_metadata", "userMetadata")
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})
FORMAT_ALIASES = {"wav32": "wav", "opus": "ogg", "oga": "ogg"}
LM_BACKENDS = frozenset({"vllm", "pt", "mlx"})
SOURCE_UPLOADS = ("src_audio", "ctx_audio")
REFERENCE_UPLOADS = ("reference_audio", "ref_audio")


# --- coercion (spec §3) ------------------------------------------------------------------


def to_int(value: Any) -> int | None:
    """ACE-Step's ``_to_int``: ints (and bools) as is; text parsed; ``"120.0"`` is not an int."""
    if value is None or isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def to_float(value: Any) -> float | None:
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, bool):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def to_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if not text:
        return None
    return text in TRUE_WORDS


def to_seed(value: Any) -> str | None:
    """An int, ``"a,b"`` or (a superset) a JSON list of ints, kept as ACE-Step's text form."""
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(to_seed(v)) for v in value) or None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() or None


COERCE = {
    "str": lambda v: None if v is None else str(v),
    "int": to_int,
    "float": to_float,
    "bool": to_bool,
    "seed": to_seed,
}


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def lookup(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical names to raw values: body, then ``param_obj``, then the first metas object."""
    sources: list[Mapping[str, Any]] = [fields, _as_dict(fields.get("param_obj"))]
    nested = next((_as_dict(fields[k]) for k in NESTED_KEYS if fields.get(k)), {})
    sources.append(nested)
    found: dict[str, Any] = {}
    for name, (aliases, kind) in FIELDS.items():
        for source in sources:
            raw = next((source[a] for a in aliases if source.get(a) is not None), None)
            if raw is not None:
                value = COERCE[kind](raw)
                if value is not None and not (kind != "str" and value == ""):
                    found[name] = value
                break
    return found


# --- content types (spec §4.1) --------------------------------------------------------------


@dataclass
class Body:
    fields: dict[str, Any]
    uploads: dict[str, UploadFile]


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes (checked while streaming)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(raw: bytes, *, malformed: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(malformed) from exc
    if not isinstance(data, dict):
        raise BadRequest("JSON payload must be an object")
    return data


async def read_body(request: Request, settings: Settings, *, allow_empty: bool = False) -> Body:
    """Parse the body by content type, as ACE-Step does, with size limits.

    ``allow_empty``: an empty body is ``{}`` (query and helper routes, whose every field is
    optional) instead of ACE-Step's 415.
    """
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        declared = request.headers.get("content-length")
        total_limit = settings.max_upload_bytes * MAX_FORM_FILES + settings.max_body_bytes
        if declared and declared.isdigit() and int(declared) > total_limit:
            raise PayloadTooLarge(f"request body larger than {total_limit} bytes")
        try:
            form = await request.form(
                max_files=MAX_FORM_FILES,
                max_fields=MAX_FORM_FIELDS,
                max_part_size=settings.max_body_bytes,
            )
        except Exception as exc:  # starlette raises HTTPException/MultiPartException
            raise BadRequest(f"malformed multipart body: {getattr(exc, 'detail', exc)}") from exc
        fields: dict[str, Any] = {}
        uploads: dict[str, UploadFile] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.setdefault(key, value)
            else:
                fields.setdefault(key, value)
        return Body(fields, uploads)
    raw = await read_limited(request, settings.max_body_bytes)
    if allow_empty and not raw.strip():
        return Body({}, {})
    if content_type.startswith("application/json") or content_type.split(";")[0].endswith("+json"):
        return Body(_json_object(raw, malformed="Malformed JSON payload"), {})
    if content_type.startswith("application/x-www-form-urlencoded"):
        if raw.lstrip().startswith(b"{"):  # ``curl -d '{...}'`` without -H: curl's default CT
            try:
                return Body(_json_object(raw, malformed=""), {})
            except BadRequest:
                pass  # not JSON after all: read it as a form
        return Body(_parse_qs(raw), {})
    text = raw.decode("utf-8", errors="replace").lstrip()
    if text.startswith(("{", "[")):
        hint = "Invalid JSON body (hint: set 'Content-Type: application/json')"
        return Body(_json_object(raw, malformed=hint), {})
    if text and "=" in text:
        return Body(_parse_qs(raw), {})
    raise UnsupportedMediaType(
        f"Unsupported Content-Type: {content_type or '(missing)'}; use application/json, "
        "application/x-www-form-urlencoded, or multipart/form-data"
    )


def _parse_qs(raw: bytes) -> dict[str, Any]:
    parsed = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


# --- building the job ---------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    request: GenerationRequest
    duration: float  # seconds of audio per item, for the ETA
    saved_files: list[Path]  # uploads written for this job (removed if it is not accepted)


def resolve_seeds(use_random_seed: bool, seed: str, batch_size: int) -> list[int]:
    """The seed of each batch item: the client's when ``use_random_seed`` is false, else random."""
    given: list[int] = []
    if not use_random_seed:
        for part in seed.split(","):
            value = to_int(part)
            if value is None or value < 0:
                break
            given.append(value % 2**32)
    seeds = given[:batch_size]
    while len(seeds) < batch_size:
        seeds.append(secrets.randbelow(2**32))
    return seeds


def _lm_notes(values: dict[str, Any]) -> list[str]:
    notes = []
    for flag in ("thinking", "sample_mode", "use_format"):
        if values.get(flag):
            notes.append(
                f"{flag} requested: songqueue has no ACE-Step language model, "
                "so the caption and lyrics were used as given"
            )
    for flag in ("use_cot_caption", "use_cot_language"):
        if values.get(flag):  # only when the client sent it: both default to true upstream
            notes.append(
                f"{flag} requested: skipped, as ACE-Step does when its language model is off"
            )
    if values.get("sample_query") and not values.get("prompt"):
        notes.append("sample_query used as the caption")
    return notes


async def build_submission(body: Body, settings: Settings) -> Submission:
    """Validate a parsed body into a ``GenerationRequest``; uploads are saved, sources probed."""
    values = lookup(body.fields)
    saved: list[Path] = []
    try:
        for canonical, names in (
            ("src_audio_path", SOURCE_UPLOADS),
            ("reference_audio_path", REFERENCE_UPLOADS),
        ):
            upload = next((body.uploads[n] for n in names if n in body.uploads), None)
            if upload is not None:
                path = await save_upload(settings, upload, canonical.split("_")[0])
                saved.append(path)
                values[canonical] = str(path)
            elif values.get(canonical):
                values[canonical] = validate_source_path(settings, values[canonical])
            else:
                values.pop(canonical, None)
        return _finish(values, settings, saved)
    except BaseException:
        for path in saved:
            path.unlink(missing_ok=True)
        raise


def _finish(values: dict[str, Any], settings: Settings, saved: list[Path]) -> Submission:
    fmt = str(values.get("audio_format") or settings.default_audio_format).lower()
    values["audio_format"] = FORMAT_ALIASES.get(fmt, fmt)
    backend = values.pop("lm_backend", None)
    if backend is not None and backend not in LM_BACKENDS:
        raise BadRequest(f"lm_backend must be one of vllm, pt, mlx (got {backend!r})")
    values["notes"] = _lm_notes(values)
    if values.get("sample_query") and not values.get("prompt"):
        values["prompt"] = values["sample_query"]  # description mode without an LLM
    if values.get("task_type") == "cover" and not values.get("src_audio_path"):
        values["task_type"] = "text2music"  # ACE-Step: a cover without a source is text2music
        values["notes"].append("cover without a source song: generated as text2music")
    duration = values.get("audio_duration")
    if duration is not None and duration <= 0:
        values.pop("audio_duration")  # ACE-Step: 0 or negative means "automatic"
    if values.get("repainting_end") is not None and values["repainting_end"] <= 0:
        values.pop("repainting_end")  # ACE-Step: end <= 0 means "end of the source"
    try:
        request = msgspec.convert(values, GenerationRequest)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc)) from exc
    source_seconds = None
    for key in ("src_audio_path", "reference_audio_path"):
        path = getattr(request, key)
        if path:
            try:
                seconds = probe_duration(Path(path))
            except EngineInputError as exc:
                raise BadRequest(f"{key}: {exc}") from exc
            if seconds < MIN_DURATION_SECONDS:
                raise BadRequest(
                    f"{key}: the audio is {seconds:.3f} s long; "
                    f"at least {MIN_DURATION_SECONDS} s is needed"
                )
            if key == "src_audio_path":
                source_seconds = seconds
    duration = request.audio_duration or source_seconds or DEFAULT_DURATION_SECONDS
    if request.task_type == "repaint" and request.audio_duration is None:
        duration = max(duration, request.repainting_end or 0.0)
    duration = min(max(duration, MIN_DURATION_SECONDS), MAX_DURATION_SECONDS)
    request.seeds = resolve_seeds(request.use_random_seed, request.seed, request.batch_size)
    request.audio_duration = round(duration, 3)
    return Submission(request, request.audio_duration, saved)


# --- /query_result ----------------------------------------------------------------------------

MAX_TASK_IDS = 1000  # ids in one /query_result call


def task_ids(fields: Mapping[str, Any]) -> list[str]:
    """``task_id_list`` as a list, or a string holding a JSON list (``JSON.stringify([id])``).

    A superset of ACE-Step's parsing: a bare id string, or a comma-separated one, is read as
    those ids (ACE-Step answered ``[]``), and a lone ``task_id`` is accepted too.
    """
    raw = fields.get("task_id_list")
    if raw is None:
        raw = fields.get("task_ids", fields.get("task_id"))
    if isinstance(raw, str):
        text = raw.strip()
        try:
            parsed = json.loads(text) if text else []
        except ValueError:
            parsed = [part for part in text.split(",") if part.strip()]
        raw = parsed
    if raw is None:
        return []
    if isinstance(raw, str | int):
        raw = [raw]
    if not isinstance(raw, list):
        raise BadRequest("task_id_list must be a list of task ids")
    ids = [str(item).strip() for item in raw if item is not None and str(item).strip()]
    if len(ids) > MAX_TASK_IDS:
        raise BadRequest(f"task_id_list has {len(ids)} ids; at most {MAX_TASK_IDS} per call")
    return ids
