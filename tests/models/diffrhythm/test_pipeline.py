"""The engine end to end on the tiny model directory: loader, lyrics, sampler, VAE, all real."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.diffrhythm.lyrics import seconds_to_frame
from models.diffrhythm.pipeline import DiffRhythmEngine
from models.engine import Audio, EngineInputError, GenerationSpec, run_task
from models.registry import load_engine

LYRICS = "[verse]\nHello world, this is a test\nSinging in the rain\n[chorus]\nOh yeah"
SPEC = GenerationSpec(
    caption="indie pop", lyrics=LYRICS, duration=3.0, seeds=(1, 2), inference_steps=2
)


def _tone(seconds: float, freq: float = 220.0, sr: int = 44100) -> Audio:
    t = np.arange(int(seconds * sr), dtype=np.float32) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    return Audio(np.stack([wave, 0.8 * wave]).astype(np.float32), sr)


def test_text2music_tracks_progress_and_metas(engine: DiffRhythmEngine) -> None:
    calls: list[tuple[int, int]] = []
    spec = replace(SPEC, bpm=100, key_scale="A minor")
    tracks = engine.text2music(spec, lambda d, t: calls.append((d, t)))
    total = engine.total_steps(spec)
    assert total == 3
    assert calls == [(i, total) for i in range(1, total + 1)]
    assert [t.seed for t in tracks] == [1, 2]
    for track in tracks:
        assert track.audio.sample_rate == 44100
        assert track.audio.samples.shape == (2, 3 * 44100)
        assert track.audio.samples.dtype == np.float32
        assert np.isfinite(track.audio.samples).all()
        assert math.isclose(float(np.abs(track.audio.samples).max()), 1.0, rel_tol=1e-5)
        assert track.metas == {
            "bpm": 100,
            "keyscale": "A minor",
            "timesignature": "N/A",
            "duration": 3.0,
            "genres": "indie pop",
            "model": "diffrhythm-v1.2-base",
        }
    assert not np.allclose(tracks[0].audio.samples, tracks[1].audio.samples)


def test_seeds_are_per_item_and_reproducible(engine: DiffRhythmEngine) -> None:
    pair = engine.text2music(SPEC)
    alone = engine.text2music(replace(SPEC, seeds=(2,)))
    np.testing.assert_allclose(alone[0].audio.samples, pair[1].audio.samples, atol=1e-4)
    again = engine.text2music(replace(SPEC, seeds=(2,)))
    np.testing.assert_array_equal(again[0].audio.samples, alone[0].audio.samples)


def test_repaint_keeps_latents_outside_the_span_bit_exact(engine: DiffRhythmEngine) -> None:
    source = _tone(8.0)
    spec = GenerationSpec(
        task="repaint",
        caption="rock",
        lyrics=LYRICS,
        source=source,
        repaint_start=2.0,
        repaint_end=5.0,
        seeds=(7, 8),
        inference_steps=2,
    )
    latents, plan, total = engine.generate_latents(spec)
    assert total == 3 and plan.variant == "base" and latents.shape == (2, 2048, 64)
    expected = engine._source_latents(source, plan, sample_seed=7)[0]
    first, last = seconds_to_frame(2.0), seconds_to_frame(5.0)
    source_frames = math.ceil(8.0 * 44100 / 2048)
    for item in latents:
        assert torch.equal(item[:first], expected[:first])
        assert torch.equal(item[last:source_frames], expected[last:source_frames])
        assert not torch.allclose(item[first:last], expected[first:last])
        # past the end of the source nothing is copied: those frames are generated
        assert not torch.allclose(item[source_frames:], expected[source_frames:])
    tracks = engine.repaint(spec)
    assert [t.audio.samples.shape for t in tracks] == [(2, 8 * 44100)] * 2


def test_repaint_to_the_end_and_bad_spans(engine: DiffRhythmEngine) -> None:
    spec = GenerationSpec(task="repaint", source=_tone(4.0), repaint_start=1.0, repaint_end=None,
                          seeds=(1,), inference_steps=1)  # fmt: skip
    latents, plan, _ = engine.generate_latents(spec)
    expected = engine._source_latents(spec.source, plan, sample_seed=1)[0]
    assert torch.equal(latents[0, : seconds_to_frame(1.0)], expected[: seconds_to_frame(1.0)])
    with pytest.raises(EngineInputError, match="must be after"):
        engine.repaint(replace(spec, repaint_start=3.0, repaint_end=2.0))
    with pytest.raises(EngineInputError, match="source"):
        engine.repaint(replace(spec, source=None))


def test_cover_at_strength_zero_is_text2music(engine: DiffRhythmEngine) -> None:
    t2m = replace(SPEC, seeds=(5,))
    cover = replace(t2m, task="cover", source=_tone(3.0), cover_strength=0.0)
    assert engine.total_steps(cover) == engine.total_steps(t2m)
    a = engine.text2music(t2m)[0].audio.samples
    b = run_task(engine, cover)[0].audio.samples
    np.testing.assert_array_equal(a, b)


def test_cover_follows_the_source(engine: DiffRhythmEngine) -> None:
    spec = replace(SPEC, task="cover", seeds=(5,), inference_steps=3, cover_strength=1.0)
    assert engine.total_steps(spec) == 3 - int(3 * 0.7) + 1
    low = engine.cover(replace(spec, source=_tone(3.0, 110.0)))[0].audio.samples
    high = engine.cover(replace(spec, source=_tone(3.0, 880.0)))[0].audio.samples
    plain = engine.text2music(replace(spec, task="text2music"))[0].audio.samples
    assert not np.allclose(low, high)
    assert not np.allclose(low, plain)
    with pytest.raises(EngineInputError, match="strength"):
        engine.total_steps(replace(spec, source=_tone(3.0), cover_strength=1.5))


def test_reference_audio_sets_the_style(engine: DiffRhythmEngine) -> None:
    spec = replace(SPEC, seeds=(3,), inference_steps=1)
    by_caption = engine.text2music(spec)[0].audio.samples
    by_reference = engine.text2music(replace(spec, reference=_tone(12.0)))[0].audio.samples
    assert not np.allclose(by_caption, by_reference)
    with pytest.raises(EngineInputError, match=r"reference audio is 0.5 s"):
        engine.text2music(replace(spec, reference=_tone(0.5)))


def test_duration_picks_the_model(engine: DiffRhythmEngine) -> None:
    assert engine.plan(95.0).variant == "base"
    full = engine.plan(100.0)
    assert (full.variant, full.end_frame, full.max_secs) == ("full", seconds_to_frame(100), 100.0)
    assert math.isclose(full.song_duration, full.end_frame / 6144)
    assert engine.plan(95.5).end_frame == seconds_to_frame(96)  # full starts at 96 s
    with pytest.raises(EngineInputError, match="longer than"):
        engine.plan(300.0)
    with pytest.raises(EngineInputError, match="positive"):
        engine.plan(0.0)
    track = engine.text2music(replace(SPEC, duration=97.5, seeds=(1,), inference_steps=1))[0]
    assert track.audio.samples.shape == (2, round(97.5 * 44100))
    assert track.metas["model"] == "diffrhythm-v1.2-full"


def test_input_errors(engine: DiffRhythmEngine) -> None:
    with pytest.raises(EngineInputError, match="Chinese"):
        engine.text2music(replace(SPEC, lyrics="[00:01.00]你好\n[00:09.00]"))
    with pytest.raises(EngineInputError, match="inference_steps"):
        engine.total_steps(replace(SPEC, inference_steps=500))
    with pytest.raises(EngineInputError, match="seed"):
        engine.text2music(replace(SPEC, seeds=()))


def test_the_step_callback_can_stop_a_job(engine: DiffRhythmEngine) -> None:
    class LeaseLost(Exception):
        pass

    def on_step(done: int, total: int) -> None:
        if done == 2:
            raise LeaseLost

    with pytest.raises(LeaseLost):
        engine.text2music(SPEC, on_step)


def test_registry_loads_the_engine(tiny_dir: Path) -> None:
    loaded = load_engine("diffrhythm", tiny_dir)
    assert isinstance(loaded, DiffRhythmEngine)
    assert (loaded.name, loaded.model_name, loaded.sample_rate) == (
        "diffrhythm",
        "diffrhythm-v1.2",
        44100,
    )
    assert loaded.dtype == torch.float32 and loaded.device.type == "cpu"


def test_from_directory_refuses_an_incomplete_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"vae_model.pt is missing"):
        DiffRhythmEngine.from_directory(tmp_path)


@pytest.mark.gpu
def test_half_precision_on_cuda(tiny_dir: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    for dtype in ("fp16", "bf16"):
        gpu = DiffRhythmEngine.from_directory(tiny_dir, "cuda", dtype=dtype)
        tracks = gpu.text2music(SPEC)
        assert all(np.isfinite(t.audio.samples).all() for t in tracks)
        assert tracks[0].audio.samples.shape == (2, 3 * 44100)
