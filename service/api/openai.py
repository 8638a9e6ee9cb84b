"""``POST /v1/chat/completions``: ACE-Step's OpenAI/OpenRouter-style endpoint (spec §9.4).

The chat request becomes an ordinary job through ``AppState.submit``, so it waits in the same
queue as every other client's. The route then polls the job row until it finishes and answers
with the first audio file as a data URL: in one JSON body, or as server-sent events with a
heartbeat while the job waits. Unlike ACE-Step, the API key is checked when one is set (OpenAI
clients send ``Authorization: Bearer`` anyway).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from models.audio import MEDIA_TYPES
from service.auth import require_header
from service.config import Settings
from service.errors import BadRequest, SongqueueError
from service.render import NOT_AVAILABLE, metas_of, result_paths
from service.requests import Body, read_limited
from service.schemas import Job
from service.state import AppState, app_state
from service.store import queue

log = logging.getLogger(__name__)

GENERATION_TIMEOUT_SECONDS = 600.0  # ACE-Step's ACESTEP_GENERATION_TIMEOUT default
POLL_SECONDS = 0.25  # between reads of the job row while waiting
HEARTBEAT_SECONDS = 2.0  # a "." content delta this often while a streamed job waits
DEFAULT_BATCH_SIZE = 1  # only the first audio is returned, so make one unless asked
SOURCE_TASKS = frozenset({"cover", "repaint", "lego", "extract", "complete"})
LYRICS_MARKERS = (
    "[verse", "[chorus", "[bridge", "[intro", "[outro", "[hook", "[pre-chorus", "[refrain", "[inst",
)
TAG = r"<{0}>(.*?)</{0}>"
FINISHED = ("succeeded", "failed", "cancelled")


class Message(msgspec.Struct):
    role: str
    content: str | list[dict[str, Any]] | None = None


class AudioConfig(msgspec.Struct, kw_only=True):
    duration: float | None = None
    format: str = "mp3"
    bpm: int | None = None
    key_scale: str | None = None
    time_signature: str | None = None
    vocal_language: str | None = None
    instrumental: bool | None = None


class ChatRequest(msgspec.Struct, kw_only=True):
    """The fields ACE-Step reads; unknown keys (temperature, top_p...) are tolerated."""

    model: str
    messages: list[Message]
    stream: bool = False
    audio_config: AudioConfig | None = None
    lyrics: str | None = None
    seed: int | str | None = None
    batch_size: int | None = None
    task_type: str = "text2music"
    guidance_scale: float | None = None
    inference_steps: int | None = None
    thinking: bool | None = None
    sample_mode: bool = False
    use_format: bool = False
    repainting_start: float | None = None
    repainting_end: float | None = None
    audio_cover_strength: float | None = None


chat_decoder = msgspec.json.Decoder(ChatRequest)


def looks_like_lyrics(text: str) -> bool:
    """ACE-Step's heuristic: section markers, or at least four short lines."""
    lower = text.lower()
    if any(marker in lower for marker in LYRICS_MARKERS):
        return True
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return len(lines) >= 4 and sum(map(len, lines)) / len(lines) < 60


def decode_audio_part(part: dict[str, Any], index: int) -> UploadFile:
    """An ``input_audio`` part (base64 or data URL) as an upload the submission path saves."""
    audio = part.get("input_audio") or {}
    data = str(audio.get("data") or "")
    fmt = str(audio.get("format") or "mp3").lstrip(".").lower()
    if "," in data and data.startswith("data:"):
        data = data.split(",", 1)[1]
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"input_audio part {index}: data is not valid base64") from exc
    return UploadFile(io.BytesIO(raw), size=len(raw), filename=f"input_{index}.{fmt}")


def parse_messages(messages: list[Message]) -> tuple[str, str, list[UploadFile]]:
    """(caption, lyrics, audio parts) from the last user message with content."""
    for msg in reversed(messages):
        if msg.role != "user" or not msg.content:
            continue
        audio: list[UploadFile] = []
        if isinstance(msg.content, str):
            text = msg.content.strip()
        else:
            texts = []
            for part in msg.content:
                if part.get("type") == "text":
                    texts.append(str(part.get("text") or "").strip())
                elif part.get("type") == "input_audio":
                    audio.append(decode_audio_part(part, len(audio)))
            text = "\n".join(t for t in texts if t).strip()
        prompt = re.search(TAG.format("prompt"), text, re.DOTALL | re.IGNORECASE)
        lyrics = re.search(TAG.format("lyrics"), text, re.DOTALL | re.IGNORECASE)
        if prompt or lyrics:
            rest = text
            for found in (prompt, lyrics):
                if found:
                    rest = rest.replace(found.group(0), "")
            caption = prompt.group(1).strip() if prompt else rest.strip()
            return caption, lyrics.group(1).strip() if lyrics else "", audio
        if looks_like_lyrics(text):
            return "", text, audio
        return text, "", audio
    return "", "", []


def to_body(req: ChatRequest) -> Body:
    """The chat request as the fields and uploads every other route submits."""
    caption, lyrics, audio = parse_messages(req.messages)
    if req.lyrics:  # explicit lyrics: the message text is the caption
        caption, lyrics = caption or lyrics, req.lyrics
    if not caption and not lyrics and not audio and not req.sample_mode:
        raise BadRequest("No valid prompt, lyrics, sample query, or input audio found in request")
    config = req.audio_config or AudioConfig()
    if config.instrumental and not lyrics:
        lyrics = "[inst]"
    fields: dict[str, Any] = {
        "prompt": caption,
        "lyrics": lyrics,
        "task_type": req.task_type,
        "audio_format": config.format,
        "batch_size": req.batch_size or DEFAULT_BATCH_SIZE,
        "model": req.model.split("/", 1)[-1],
        "sample_mode": req.sample_mode,
        "use_format": req.use_format,
        "thinking": bool(req.thinking),
    }
    optional = {
        "audio_duration": config.duration,
        "bpm": config.bpm,
        "key_scale": config.key_scale,
        "time_signature": config.time_signature,
        "vocal_language": config.vocal_language,
        "guidance_scale": req.guidance_scale,
        "inference_steps": req.inference_steps,
        "repainting_start": req.repainting_start,
        "repainting_end": req.repainting_end,
        "audio_cover_strength": req.audio_cover_strength,
    }
    fields |= {k: v for k, v in optional.items() if v is not None}
    if req.seed is not None:  # a seed given is a seed used (ACE-Step: use_random_seed = no seed)
        fields |= {"seed": req.seed, "use_random_seed": False}
    uploads: dict[str, UploadFile] = {}
    if audio and req.task_type in SOURCE_TASKS:
        uploads["src_audio"] = audio[0]
        if len(audio) > 1:
            uploads["reference_audio"] = audio[1]
    elif audio:
        uploads["reference_audio"] = audio[0]
    return Body(fields, uploads)


async def wait_finished(state: AppState, job_id: str, deadline: float) -> Job | None:
    """Poll the job row until it finishes; None at the deadline."""
    while True:
        job = await queue.get_job(state.db, job_id)
        if job.status in FINISHED:
            return job
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(POLL_SECONDS)


def content_text(job: Job) -> str:
    """ACE-Step's markdown: a metadata section, then the lyrics unless instrumental."""
    metas = metas_of(job)
    lines = []
    if job.request.prompt:
        lines.append(f"**Caption:** {job.request.prompt}")
    for key, label, unit in (
        ("bpm", "BPM", ""),
        ("duration", "Duration", "s"),
        ("keyscale", "Key", ""),
        ("timesignature", "Time Signature", ""),
    ):
        if metas.get(key) not in (None, "", NOT_AVAILABLE):
            lines.append(f"**{label}:** {metas[key]}{unit}")
    parts = ["## Metadata\n" + "\n".join(lines)] if lines else []
    lyrics = job.request.lyrics.strip()
    if lyrics and lyrics.lower() not in ("[inst]", "[instrumental]"):
        parts.append(f"## Lyrics\n{lyrics}")
    return "\n\n".join(parts) or "Music generated successfully."


def audio_parts(state: AppState, job: Job) -> list[dict[str, Any]]:
    """The first audio file of a finished job, as a data URL (only the first, as ACE-Step)."""
    assert job.result is not None
    paths = result_paths(state.settings, job.result)
    if not paths or not paths[0].is_file():
        return []
    media = MEDIA_TYPES.get(paths[0].suffix.lstrip(".").lower(), "audio/mpeg")
    data = base64.b64encode(paths[0].read_bytes()).decode("ascii")
    return [{"type": "audio_url", "audio_url": {"url": f"data:{media};base64,{data}"}}]


def failure(job: Job | None) -> str:
    if job is None:
        return "Generation timeout"
    return job.error or f"job {job.status}"


def body_limit(settings: Settings) -> int:
    """Room for two base64 audio parts (a third larger than the files) and the text."""
    return 2 * (settings.max_upload_bytes * 4 // 3 + 4) + settings.max_body_bytes


def completion_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


async def chat_completions(request: Request) -> Response:
    state = app_state(request)
    require_header(state.settings, request)
    raw = await read_limited(request, body_limit(state.settings))
    try:
        req = chat_decoder.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise BadRequest(f"Invalid request format: {exc}") from exc
    body = to_body(req)
    job = await state.submit(body, api="openai", request=request)
    log.info("chat completion %s: job %s (stream=%s)", req.model, job.job_id, req.stream)
    deadline = time.monotonic() + GENERATION_TIMEOUT_SECONDS
    if req.stream:
        return StreamingResponse(
            stream_events(state, job, req.model, deadline),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    done = await wait_finished(state, job.job_id, deadline)
    if done is None:
        await queue.cancel(state.db, job.job_id)  # nobody will read it: free the worker
        return JSONResponse({"detail": "Generation timeout"}, status_code=504)
    if done.status != "succeeded":
        return JSONResponse({"detail": failure(done)}, status_code=500)
    audio = audio_parts(state, done)
    message = {"role": "assistant", "content": content_text(done), "audio": audio}
    return JSONResponse(
        {
            "id": completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


async def stream_events(
    state: AppState, job: Job, model: str, deadline: float
) -> AsyncIterator[str]:
    """SSE chunks: role, heartbeats while waiting, metadata, the audio, stop, ``[DONE]``."""
    cid, created = completion_id(), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": "Generating music"})
    done: Job | None = None
    try:
        next_beat = time.monotonic() + HEARTBEAT_SECONDS
        while done is None:
            current = await queue.get_job(state.db, job.job_id)
            if current.status in FINISHED:
                done = current
                break
            if time.monotonic() >= deadline:
                await queue.cancel(state.db, job.job_id)
                break
            if time.monotonic() >= next_beat:
                yield chunk({"content": "."})
                next_beat += HEARTBEAT_SECONDS
            await asyncio.sleep(POLL_SECONDS)
        if done is None or done.status != "succeeded":
            yield chunk({"content": f"\n\nError: {failure(done)}"})
            yield chunk({}, "error")
        else:
            yield chunk({"content": f"\n\n{content_text(done)}"})
            audio = audio_parts(state, done)
            if audio:
                yield chunk({"audio": audio})
            yield chunk({}, "stop")
    except Exception as exc:  # mid-stream, an error can only be told in the stream
        log.warning("chat stream for job %s failed: %r", job.job_id, exc)
        detail = exc.detail if isinstance(exc, SongqueueError) else "internal error"
        yield chunk({"content": f"\n\nError: {detail}"})
        yield chunk({}, "error")
    yield "data: [DONE]\n\n"


routes = [Route("/v1/chat/completions", chat_completions, methods=["POST"])]
