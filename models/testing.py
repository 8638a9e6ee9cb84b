"""A test double engine (procrastinate's ``InMemoryConnector``, Oban's ``inline`` engine).

``TimedEngine`` takes a fixed, configurable time per step and renders a plain sine tone of the
requested length, so worker, crash and ETA tests control exactly how long a job runs. Selected
with ``--engine models.testing:TimedEngine``; tuned by ``SONGQUEUE_TEST_STEPS`` and
``SONGQUEUE_TEST_STEP_SECONDS``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from models.engine import Audio, GenerationSpec, StepCallback, Track, no_progress

SAMPLE_RATE = 44100
DEFAULT_STEPS = 4
DEFAULT_STEP_SECONDS = 0.0


class TimedEngine:
    name = "timed"
    model_name = "songqueue-timed-test"
    sample_rate = SAMPLE_RATE

    def __init__(self, steps: int | None = None, step_seconds: float | None = None) -> None:
        self.steps = steps or int(os.environ.get("SONGQUEUE_TEST_STEPS", DEFAULT_STEPS))
        self.step_seconds = (
            step_seconds
            if step_seconds is not None
            else float(os.environ.get("SONGQUEUE_TEST_STEP_SECONDS", DEFAULT_STEP_SECONDS))
        )

    def total_steps(self, spec: GenerationSpec) -> int:
        return self.steps * spec.batch_size

    def _render(self, spec: GenerationSpec, on_step: StepCallback) -> list[Track]:
        total = self.total_steps(spec)
        frames = round(spec.duration * SAMPLE_RATE)
        tracks = []
        for index, seed in enumerate(spec.seeds):
            for step in range(self.steps):
                time.sleep(self.step_seconds)
                on_step(index * self.steps + step + 1, total)
            freq = 220.0 + seed % 440
            t = np.arange(frames, dtype=np.float32) / SAMPLE_RATE
            tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
            tracks.append(Track(Audio(np.stack([tone, tone]), SAMPLE_RATE), seed, {}))
        return tracks

    def text2music(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        return self._render(spec, on_step)

    def cover(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        return self._render(spec, on_step)

    def repaint(self, spec: GenerationSpec, on_step: StepCallback = no_progress) -> list[Track]:
        return self._render(spec, on_step)
