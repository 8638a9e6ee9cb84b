"""The shapes songqueue stores and speaks, declared once (msgspec Structs).

Stored structs outlive code versions (rows written by an older release are read by a newer
one): new fields get defaults and existing fields never change type.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

TaskType = Literal["text2music", "cover", "repaint", "lego", "extract", "complete"]
RUNNABLE_TASKS: frozenset[str] = frozenset({"text2music", "cover", "repaint"})
AudioFormat = Literal["mp3", "wav", "flac", "ogg"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]

MAX_DURATION_SECONDS = 600.0
MIN_DURATION_SECONDS = 0.1  # shorter sources and outputs are mistakes, not songs
MAX_BATCH_SIZE = 8
DEFAULT_BATCH_SIZE = 2  # ACE-Step's default: two files per task
DEFAULT_DURATION_SECONDS = 30.0  # when a text2music client leaves the duration to us

Seconds = Annotated[float, msgspec.Meta(gt=0, le=MAX_DURATION_SECONDS)]
Offset = Annotated[float, msgspec.Meta(ge=0, le=MAX_DURATION_SECONDS)]
Seed = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]


class GenerationRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One generation job as every API submits it, after aliases and coercion.

    Unknown client keys never reach this struct (the parsers drop them), so it forbids nothing;
    ranges are enforced here and cross-field rules in ``__post_init__``.
    """

    task_type: TaskType = "text2music"
    prompt: Annotated[str, msgspec.Meta(max_length=10_000)] = ""  # the caption
    lyrics: Annotated[str, msgspec.Meta(max_length=20_000)] = ""
    audio_duration: Seconds | None = None  # None = the source's length, or our default
    bpm: Annotated[int, msgspec.Meta(ge=30, le=300)] | None = None
    key_scale: Annotated[str, msgspec.Meta(max_length=32)] = ""
    time_signature: Annotated[str, msgspec.Meta(max_length=8)] = ""
    vocal_language: Annotated[str, msgspec.Meta(max_length=16)] = "en"
    inference_steps: Annotated[int, msgspec.Meta(ge=1, le=200)] | None = None
    guidance_scale: Annotated[float, msgspec.Meta(ge=0, le=50)] | None = None
    use_random_seed: bool = True
    seed: str = "-1"  # as sent: "-1", "42" or "1,2"; resolved into ``seeds`` at submission
    seeds: list[Seed] = msgspec.field(default_factory=list)
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH_SIZE)] = DEFAULT_BATCH_SIZE
    repainting_start: Offset = 0.0
    repainting_end: Offset | None = None  # None = end of the source
    audio_cover_strength: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    src_audio_path: str | None = None
    reference_audio_path: str | None = None
    audio_format: AudioFormat = "mp3"
    model: str | None = None
    instruction: str = ""
    # Flags that need ACE-Step's language model: accepted and reported, not acted upon.
    thinking: bool = False
    sample_mode: bool = False
    sample_query: str = ""
    use_format: bool = False
    use_cot_caption: bool = True
    use_cot_language: bool = True
    notes: list[str] = msgspec.field(default_factory=list)  # what we accepted but did not do
    # object-store keys of the sources, for workers on other hosts (see service/storage.py)
    src_audio_key: str | None = None
    reference_audio_key: str | None = None

    def __post_init__(self) -> None:
        if self.task_type in ("cover", "repaint") and not self.src_audio_path:
            raise ValueError(f"task_type {self.task_type!r} needs a source song (src_audio)")
        if (
            self.task_type == "repaint"
            and self.repainting_end is not None
            and self.repainting_end <= self.repainting_start
        ):
            raise ValueError(
                f"repainting_end ({self.repainting_end}) must be after "
                f"repainting_start ({self.repainting_start})"
            )


class ResultFile(msgspec.Struct, kw_only=True):
    """One audio file of a finished job; ``path`` is relative to the outputs directory."""

    path: str
    format: str
    seed: int
    duration: float
    sample_rate: int = 44100


class JobResult(msgspec.Struct, kw_only=True):
    """What a successful job produced."""

    files: list[ResultFile]
    engine: str
    model_name: str
    metas: dict[str, object] = msgspec.field(default_factory=dict)
    generation_info: str = ""
    status_message: str = "Generation completed successfully!"
    seconds: float = 0.0  # wall time of the job

    @property
    def seed_value(self) -> str:
        return ",".join(str(f.seed) for f in self.files)


class Job(msgspec.Struct, kw_only=True):
    """A job row as the API renders it (never written back)."""

    id: int
    job_id: str
    api: str
    task_type: str
    status: JobStatus
    priority: int
    request: GenerationRequest
    duration: float
    batch_size: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    max_attempts: int
    worker_id: str | None
    engine: str | None
    steps_done: int
    steps_total: int
    progress: float
    stage: str
    last_step_at: float | None
    cancel_requested: bool
    result: JobResult | None
    error: str | None


request_encoder = msgspec.json.Encoder()
request_decoder = msgspec.json.Decoder(GenerationRequest)
result_decoder = msgspec.json.Decoder(JobResult)
