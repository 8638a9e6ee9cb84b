"""SynthEngine: the embedded, numpy-only engine for machines without DiffRhythm or a GPU.

It doubles as the fast, deterministic fake for worker and API tests: same spec and seed give
bit-identical samples, ``total_steps`` is exact, and the step callback's exceptions propagate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from models.audio import fit_length, resample, to_channels
from models.engine import (
    Audio,
    EngineInputError,
    GenerationSpec,
    StepCallback,
    Track,
    no_progress,
)
from models.synth.analysis import estimate_tempo, rms_contour
from models.synth.arrangement import SectionPlan, plan_sections
from models.synth.instruments import SAMPLE_RATE
from models.synth.render import Vocal, render_song
from models.synth.style import MAX_BPM, MIN_BPM, Style, choose_style
from models.synth.vocal import Espeak, espeak_voice

CHANNELS = 2
Tick = Callable[[], None]  # called once per rendered section
ItemRenderer = Callable[[int, list[SectionPlan], Tick], Track]  # (seed, plans, tick) -> track
CROSSFADE_SECONDS = 0.03  # equal-power fades at repaint edges, inside the region
REPAINT_GAIN_RANGE = (0.25, 4.0)  # how far a repainted region may be re-levelled to match
CONTOUR_GAIN_RANGE = (0.05, 3.0)  # cover: per-beat loudness ratios are clipped to this
SILENCE_RMS = 1e-4  # below this a source region counts as silent (no re-levelling)


def _frames(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed % 2**64)  # numpy refuses negative seeds


def _metas(style: Style, frames: int) -> dict[str, object]:
    return {
        "bpm": int(style.bpm),
        "keyscale": style.key.name,
        "timesignature": style.meter.label,
        "duration": frames / SAMPLE_RATE,
        "genres": ", ".join(style.genres),
        "instruments": ", ".join(style.instruments),
    }


class SynthEngine:
    """Chords, bass, drums, melody and an espeak-ng guide vocal, laid out in sections."""

    name = "synth"
    model_name = "songqueue-synth-v1"
    sample_rate = SAMPLE_RATE

    def __init__(self, espeak: Espeak | None = None) -> None:
        self.espeak = espeak or Espeak(SAMPLE_RATE)

    # -- the Engine protocol ------------------------------------------------------------------

    def total_steps(self, spec: GenerationSpec) -> int:
        """One step per section per batch item."""
        return spec.batch_size * len(self._plan(spec, self._output_frames(spec)))

    def text2music(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        frames = self._output_frames(spec)

        def item(seed: int, plans: list[SectionPlan], tick: Tick) -> Track:
            rng = _rng(seed)
            return self._finish(spec, seed, self._style(spec, rng), plans, frames, rng, tick)

        return self._batch(spec, frames, on_step, item)

    def cover(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        source = self._source(spec)
        mono = source.samples.mean(axis=0)
        source_bpm = estimate_tempo(mono, SAMPLE_RATE)
        strength = float(np.clip(spec.cover_strength, 0.0, 1.0))
        frames = self._output_frames(spec)

        def item(seed: int, plans: list[SectionPlan], tick: Tick) -> Track:
            rng = _rng(seed)
            style = self._style(spec, rng)
            if strength == 0.0:  # the source is ignored: exactly text2music
                return self._finish(spec, seed, style, plans, frames, rng, tick)
            if spec.bpm is None:
                blended = math.exp(
                    (1 - strength) * math.log(style.bpm) + strength * math.log(source_bpm)
                )
                style = _with_bpm(style, round(blended))
            curve = _contour_gain(mono, source_bpm, frames, strength)
            track = self._finish(spec, seed, style, plans, frames, rng, tick, curve)
            track.metas.update(source_bpm=round(source_bpm, 1), cover_strength=strength)
            return track

        return self._batch(spec, frames, on_step, item)

    def repaint(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        source = self._source(spec)
        start, end = self._repaint_region(spec, source.frames)
        frames = max(source.frames, end)
        mono = source.samples.mean(axis=0)
        source_bpm = round(estimate_tempo(mono, SAMPLE_RATE)) if spec.bpm is None else None

        def item(seed: int, plans: list[SectionPlan], tick: Tick) -> Track:
            rng = _rng(seed)
            style = self._style(spec, rng)
            if source_bpm is not None:  # keep the song's pulse unless a tempo was asked for
                style = _with_bpm(style, source_bpm)
            fresh = render_song(style, plans, frames, rng, self._vocal(spec), tick)
            out = _splice(source.samples, fresh, start, end)
            metas = _metas(style, frames)
            metas.update(repaint_start=start / SAMPLE_RATE, repaint_end=end / SAMPLE_RATE)
            return Track(Audio(out, SAMPLE_RATE), seed, metas)

        return self._batch(spec, frames, on_step, item)

    # -- shared plumbing ----------------------------------------------------------------------

    def _output_frames(self, spec: GenerationSpec) -> int:
        if spec.task == "repaint" and spec.source is not None:
            source_frames = _frames(spec.source.duration)
            return max(source_frames, self._repaint_region(spec, source_frames)[1])
        frames = _frames(spec.duration)
        if frames <= 0:
            raise EngineInputError(f"duration must be positive, got {spec.duration} s")
        return frames

    def _plan(self, spec: GenerationSpec, frames: int) -> list[SectionPlan]:
        return plan_sections(spec.lyrics, frames / SAMPLE_RATE)

    def _style(self, spec: GenerationSpec, rng: np.random.Generator) -> Style:
        return choose_style(spec.caption, spec.bpm, spec.key_scale, spec.time_signature, rng)

    def _vocal(self, spec: GenerationSpec) -> Vocal | None:
        if not spec.lyrics.strip() or not self.espeak.available:
            return None
        return Vocal(self.espeak, espeak_voice(spec.vocal_language))

    def _source(self, spec: GenerationSpec) -> Audio:
        if spec.source is None:
            raise EngineInputError(f"{spec.task} needs a source song (src_audio)")
        # fit_length: soxr may round differently; total_steps counts from the duration.
        converted = to_channels(resample(spec.source, SAMPLE_RATE), CHANNELS)
        return fit_length(converted, _frames(spec.source.duration))

    @staticmethod
    def _repaint_region(spec: GenerationSpec, source_frames: int) -> tuple[int, int]:
        start = max(0, _frames(spec.repaint_start))
        end = source_frames if spec.repaint_end is None else _frames(spec.repaint_end)
        if end <= start:
            raise EngineInputError(
                f"repaint region is empty: start {spec.repaint_start} s, end {spec.repaint_end} s"
            )
        return start, end

    def _finish(
        self,
        spec: GenerationSpec,
        seed: int,
        style: Style,
        plans: list[SectionPlan],
        frames: int,
        rng: np.random.Generator,
        tick: Tick,
        curve: np.ndarray | None = None,
    ) -> Track:
        samples = render_song(style, plans, frames, rng, self._vocal(spec), tick, curve)
        return Track(Audio(samples, SAMPLE_RATE), seed, _metas(style, frames))

    def _batch(
        self, spec: GenerationSpec, frames: int, on_step: StepCallback, item: ItemRenderer
    ) -> list[Track]:
        """Render each seed in turn; ``on_step`` after every section, exceptions untouched."""
        plans = self._plan(spec, frames)
        total = spec.batch_size * len(plans)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            on_step(done, total)

        return [item(seed, plans, tick) for seed in spec.seeds]


def _with_bpm(style: Style, bpm: int) -> Style:
    return replace(style, bpm=int(np.clip(bpm, MIN_BPM, MAX_BPM)))


def _contour_gain(mono: np.ndarray, bpm: float, frames: int, strength: float) -> np.ndarray:
    """Per-frame gain following the source's per-beat loudness, raised to ``strength``."""
    window = max(1, round(60.0 / bpm * SAMPLE_RATE))
    rms = rms_contour(mono, window)
    loud = rms[rms > SILENCE_RMS]
    if loud.size == 0:
        return np.ones(frames, dtype=np.float32)
    ratio = np.clip(rms / loud.mean(), *CONTOUR_GAIN_RANGE) ** strength
    centres = (np.arange(rms.size) + 0.5) * window
    return np.interp(np.arange(frames), centres, ratio).astype(np.float32)


def _splice(source: np.ndarray, fresh: np.ndarray, start: int, end: int) -> np.ndarray:
    """``source`` with [start, end) replaced by ``fresh``; crossfades lie inside the region."""
    frames = fresh.shape[1]
    out = np.zeros((CHANNELS, frames), dtype=np.float32)
    out[:, : source.shape[1]] = source
    new = fresh[:, start:end].copy()
    old = out[:, start:end]
    src_end = min(end, source.shape[1])
    old_rms = (
        float(np.sqrt(np.mean(np.square(source[:, start:src_end])))) if src_end > start else 0.0
    )
    new_rms = float(np.sqrt(np.mean(np.square(new))))
    if old_rms > SILENCE_RMS and new_rms > SILENCE_RMS:
        new *= np.float32(np.clip(old_rms / new_rms, *REPAINT_GAIN_RANGE))
    fade = min(round(CROSSFADE_SECONDS * SAMPLE_RATE), (end - start) // 2)
    if fade > 0:
        theta = (np.arange(fade) + 0.5) / fade * (np.pi / 2)
        rise, fall = np.sin(theta).astype(np.float32), np.cos(theta).astype(np.float32)
        if start > 0:  # fade in from the source
            new[:, :fade] = new[:, :fade] * rise + old[:, :fade] * fall
        if end < source.shape[1]:  # fade back to the source
            new[:, -fade:] = new[:, -fade:] * fall + old[:, -fade:] * rise
    out[:, start:end] = np.clip(new, -1.0, 1.0)
    return out
