"""The contract between the worker and anything that turns a request into audio.

The worker (``service/worker.py``) knows only this module: it builds a ``GenerationSpec``,
asks the engine how many steps the job will take (for the ETA), then calls ``text2music``,
``cover`` or ``repaint`` with a step callback. The callback renews the job's lease and may
raise (cancelled job, lost lease); engines must let that exception propagate untouched.

Nothing here imports torch: the synth engine and the API process use it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

TaskType = Literal["text2music", "cover", "repaint"]
TASK_TYPES: tuple[TaskType, ...] = ("text2music", "cover", "repaint")


class EngineInputError(Exception):
    """The engine cannot run this request; retrying will not help (bad audio, unsupported task)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


@dataclass(frozen=True)
class Audio:
    """PCM audio: float32 samples in [-1, 1], shaped (channels, frames)."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2:
            raise ValueError(f"audio must be (channels, frames), got shape {self.samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class GenerationSpec:
    """One job's musical request, already validated and with defaults resolved by the service.

    ``seeds`` has one entry per output track (its length is the batch size). ``None`` for
    ``inference_steps`` / ``guidance_scale`` means "the engine's own default".
    """

    task: TaskType = "text2music"
    caption: str = ""
    lyrics: str = ""
    duration: float = 30.0  # seconds of output; cover/repaint default to the source length
    bpm: int | None = None
    key_scale: str = ""  # "C major", "F# minor", "" = engine picks
    time_signature: str = ""  # "4", "3", "4/4", "6/8", "" = engine picks
    vocal_language: str = "en"
    seeds: tuple[int, ...] = (0,)
    inference_steps: int | None = None
    guidance_scale: float | None = None
    source: Audio | None = None  # the song to cover or repaint
    reference: Audio | None = None  # style reference (optional)
    repaint_start: float = 0.0  # seconds
    repaint_end: float | None = None  # seconds; None = end of the source
    cover_strength: float = 1.0  # 0 = ignore the source, 1 = follow it closely

    @property
    def batch_size(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class Track:
    """One generated item of a batch, with the musical facts the engine actually used."""

    audio: Audio
    seed: int
    metas: dict[str, object] = field(default_factory=dict)  # bpm, keyscale, timesignature, ...


class StepCallback(Protocol):
    """Called after each unit of work; may raise to stop the job at this step."""

    def __call__(self, done: int, total: int) -> None: ...


def no_progress(done: int, total: int) -> None:
    """The default callback: ignore progress."""


class Engine(Protocol):
    """What the worker needs from a model (``models.synth``, ``models.diffrhythm``)."""

    name: str  # "synth" | "diffrhythm": keys the timing statistics
    model_name: str  # what /v1/models and results report, e.g. "synth-v1"
    sample_rate: int

    def total_steps(self, spec: GenerationSpec) -> int:
        """How many times ``on_step`` will be called for this spec (drives progress and ETA)."""
        ...

    def text2music(
        self, spec: GenerationSpec, on_step: StepCallback = no_progress
    ) -> list[Track]: ...

    def cover(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]: ...

    def repaint(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]: ...


def run_task(
    engine: Engine, spec: GenerationSpec, on_step: StepCallback = no_progress
) -> list[Track]:
    """Dispatch a spec to the engine method for its task type."""
    match spec.task:
        case "text2music":
            return engine.text2music(spec, on_step)
        case "cover":
            if spec.source is None:
                raise EngineInputError("cover needs a source song (src_audio)")
            return engine.cover(spec, on_step)
        case "repaint":
            if spec.source is None:
                raise EngineInputError("repaint needs a source song (src_audio)")
            return engine.repaint(spec, on_step)
    raise EngineInputError(f"unsupported task type {spec.task!r}")
