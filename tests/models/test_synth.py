"""models/synth: the embedded engine makes music that honours the spec, deterministically."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace

import numpy as np
import pytest

from models.engine import Audio, EngineInputError, GenerationSpec, run_task
from models.synth import SynthEngine
from models.synth.arrangement import layout, parse_lyrics, plan_sections, tag_kind
from models.synth.style import choose_style
from models.synth.theory import parse_key, parse_time_signature
from models.synth.vocal import Espeak, espeak_voice, parse_wav_pcm16

SR = 44100
HOP = 256  # onset envelope hop for the test's own tempo measurement
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
has_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


@pytest.fixture(scope="module")
def engine() -> SynthEngine:
    return SynthEngine()


def spec(**fields: object) -> GenerationSpec:
    defaults: dict[str, object] = {"caption": "pop", "duration": 10.0, "seeds": (7,)}
    defaults.update(fields)
    return GenerationSpec(**defaults)  # type: ignore[arg-type]


def render(engine: SynthEngine, **fields: object) -> np.ndarray:
    return engine.text2music(spec(**fields))[0].audio.samples


# -- independent measurements (not the engine's own analysis code) -----------------------------


def measured_bpm(samples: np.ndarray) -> float:
    """Tempo from the autocorrelation of a spectral-flux onset envelope, searched 50-220 bpm.

    A lag scores by its autocorrelation at one to four periods, so the beat beats an off-beat
    figure. Like any onset method it may land an octave off; callers allow for that.
    """
    mono = samples.mean(axis=0)
    n = mono.size // HOP
    frames = mono[: n * HOP].reshape(n, HOP) * np.hanning(HOP)
    mags = np.log1p(100 * np.abs(np.fft.rfft(frames, axis=1)))
    env = np.maximum(np.diff(mags, axis=0), 0).sum(axis=1)
    env -= env.mean()
    ac = np.correlate(env, env, mode="full")[env.size - 1 :]
    fps = SR / HOP
    lags = np.arange(int(fps * 60 / 220), int(fps * 60 / 50))
    score = sum(
        np.maximum.reduce([ac[lags * k + d] for d in range(-k, k + 1)]) for k in (1, 2, 3, 4)
    )
    best = lags[np.argmax(score)]
    far = 4 * best  # refine on the peak 4 beats away, where a frame of error is 4x smaller
    window = np.arange(far - far // 20, far + far // 20 + 1)
    return 60 * fps * 4 / window[np.argmax(ac[window])]


def tempo_matches(measured: float, bpm: float, tolerance: float = 0.03) -> bool:
    """Within ``tolerance`` of bpm, half or double it (an onset method's octave ambiguity)."""
    return any(abs(measured / (bpm * f) - 1) < tolerance for f in (0.5, 1.0, 2.0))


def chroma(samples: np.ndarray) -> np.ndarray:
    """Energy per pitch class from 80 Hz to 2 kHz."""
    mono = samples.mean(axis=0)
    mags = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(mono.size, 1 / SR)
    band = (freqs > 80) & (freqs < 2000)
    pcs = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % 12
    return np.bincount(pcs, weights=mags[band], minlength=12)


def spectral_flatness(samples: np.ndarray) -> float:
    mono = samples.mean(axis=0)
    n = 4096
    frames = mono[: mono.size // n * n].reshape(-1, n) * np.hanning(n)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    return float(np.mean(np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


# -- contract -------------------------------------------------------------------------------------


def test_identity(engine: SynthEngine) -> None:
    assert engine.name == "synth"
    assert engine.model_name == "songqueue-synth-v1"
    assert engine.sample_rate == SR


def test_deterministic_per_seed(engine: SynthEngine) -> None:
    a = render(engine, seeds=(3,))
    b = render(engine, seeds=(3,))
    c = render(engine, seeds=(4,))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("duration", [1.0, 7.3, 30.0])
def test_exact_duration_stereo(engine: SynthEngine, duration: float) -> None:
    track = engine.text2music(spec(duration=duration))[0]
    assert track.audio.sample_rate == SR
    assert track.audio.samples.shape == (2, round(duration * SR))
    assert np.max(np.abs(track.audio.samples)) <= 1.0
    assert rms(track.audio.samples) > 0.01
    assert track.metas["duration"] == pytest.approx(duration)


def test_metas(engine: SynthEngine) -> None:
    metas = engine.text2music(spec(caption="sad jazz", bpm=100, time_signature="3/4"))[0].metas
    assert metas["bpm"] == 100
    assert isinstance(metas["bpm"], int)
    assert metas["keyscale"].endswith("minor")
    assert metas["timesignature"] == "3"
    assert metas["genres"] == "jazz"
    plain = engine.text2music(spec(caption="something", key_scale="Bb minor"))[0].metas
    assert plain["genres"] == ""
    assert plain["keyscale"] == "Bb minor"


def test_batch_items_distinct(engine: SynthEngine) -> None:
    tracks = engine.text2music(spec(seeds=(1, 2, 3)))
    assert [t.seed for t in tracks] == [1, 2, 3]
    samples = [t.audio.samples for t in tracks]
    assert not np.array_equal(samples[0], samples[1])
    assert not np.array_equal(samples[1], samples[2])
    # each item is the same as rendering its seed alone
    np.testing.assert_array_equal(samples[1], render(engine, seeds=(2,)))


def test_not_noise(engine: SynthEngine) -> None:
    samples = render(engine, caption="rock", duration=8.0)
    white = np.random.default_rng(0).standard_normal((2, samples.shape[1]))
    assert spectral_flatness(white) > 0.5
    assert spectral_flatness(samples) < 0.05


# -- musical facts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bpm", "caption", "signature"),
    [(90, "rock", "4"), (128, "edm", "4/4"), (75, "hip hop", ""), (140, "pop", "3/4")],
)
def test_bpm_honoured(engine: SynthEngine, bpm: int, caption: str, signature: str) -> None:
    track = engine.text2music(spec(caption=caption, bpm=bpm, time_signature=signature,
                                   duration=16.0))[0]  # fmt: skip
    assert track.metas["bpm"] == bpm
    measured = measured_bpm(track.audio.samples)
    assert tempo_matches(measured, bpm), f"measured {measured:.1f} bpm, asked {bpm}"


@pytest.mark.parametrize("key", ["C major", "A minor", "F# minor", "Eb major"])
@pytest.mark.parametrize("caption", ["ambient piano strings", "pop piano"])
def test_key_honoured(engine: SynthEngine, key: str, caption: str) -> None:
    """With or without drums, the requested scale holds more energy than any transposition."""
    parsed = parse_key(key)
    assert parsed is not None
    energy = chroma(render(engine, caption=caption, key_scale=key, duration=12.0))
    shares = [sum(energy[(pc + shift) % 12] for pc in parsed.pitch_classes) for shift in range(12)]
    assert int(np.argmax(shares)) == 0
    assert shares[0] / energy.sum() > 0.75
    top = np.argsort(energy)[::-1][:3]
    assert set(top.tolist()) <= parsed.pitch_classes


def test_major_and_minor_differ(engine: SynthEngine) -> None:
    major = chroma(render(engine, caption="ambient piano", key_scale="C major", duration=12.0))
    minor = chroma(render(engine, caption="ambient piano", key_scale="C minor", duration=12.0))
    e, eb, a, ab = 4, 3, 9, 8
    assert major[e] > 3 * major[eb]
    assert minor[eb] > 3 * minor[e]
    assert major[a] > 3 * major[ab]
    assert minor[ab] > 3 * minor[a]


def test_caption_words_choose_style(engine: SynthEngine) -> None:
    sad = engine.text2music(spec(caption="sad piano ballad", seeds=(1, 2, 3)))
    edm = engine.text2music(spec(caption="energetic edm", seeds=(1, 2, 3)))
    for s, e in zip(sad, edm, strict=True):
        assert str(s.metas["keyscale"]).endswith("minor")
        assert int(s.metas["bpm"]) < 85 < int(e.metas["bpm"])
        assert "piano" in str(s.metas["instruments"])
        assert "synth" in str(e.metas["instruments"])
        assert not np.array_equal(s.audio.samples, e.audio.samples)
    happy = engine.text2music(spec(caption="happy uplifting pop", seeds=(1, 2, 3)))
    assert all(str(t.metas["keyscale"]).endswith("major") for t in happy)
    waltz = engine.text2music(spec(caption="waltz", duration=2.0))[0]
    assert waltz.metas["timesignature"] == "3"


def test_instrument_words_select_voices() -> None:
    rng = np.random.default_rng(0)
    style = choose_style("organ and bells", None, "", "", rng)
    assert {"organ", "bells"} <= set(style.instruments)
    assert "guitar" not in style.instruments
    solo = choose_style("solo guitar", None, "", "", np.random.default_rng(0))
    assert solo.instruments == ("guitar",)
    assert solo.drums == ""


def test_fixed_fields_beat_caption_words() -> None:
    style = choose_style("sad slow ballad", 150, "D major", "6/8", np.random.default_rng(0))
    assert style.bpm == 150
    assert style.key.name == "D major"
    assert style.meter.beats == 6


# -- arrangement -------------------------------------------------------------------------------


def test_tags_parse_into_sections() -> None:
    lyrics = "[Intro]\n[Verse 1]\nline one\nline two\n[CHORUS]\nhook\n[instrumental]\n[outro]"
    sections, tagged = parse_lyrics(lyrics)
    assert tagged
    assert [s.kind for s in sections] == ["intro", "verse", "chorus", "inst", "outro"]
    assert sections[1].lines == ("line one", "line two")
    assert tag_kind("Pre-Chorus") == "prechorus"
    assert tag_kind("[inst]".strip("[]")) == "inst"
    # LRC timestamps are not structure tags
    lrc, tagged = parse_lyrics("[00:10.00]hello there\n[00:12.50]second line")
    assert not tagged
    assert lrc[0].lines == ("hello there", "second line")


def test_default_form_and_layout() -> None:
    kinds = [s.kind for s in plan_sections("", 60.0)]
    assert kinds[0] == "intro" and kinds[-1] == "outro" and "chorus" in kinds
    assert [s.kind for s in plan_sections("", 3.0)] == ["verse"]
    sections = layout(plan_sections("", 60.0), 30.0)
    assert sum(s.bars for s in sections) == 30
    assert all(a.start_bar + a.bars == b.start_bar for a, b in itertools.pairwise(sections))


def test_chorus_louder_than_verse(engine: SynthEngine) -> None:
    lyrics = "[verse]\n[chorus]"
    track = engine.text2music(spec(caption="rock", lyrics=lyrics, bpm=120, duration=16.0))[0]
    half = track.audio.frames // 2  # 8 bars at 120 bpm: bars 0-3 verse, 4-7 chorus
    verse = track.audio.samples[:, SR : half - SR // 2]
    chorus = track.audio.samples[:, half + SR // 2 : -SR]
    assert rms(chorus) > 1.3 * rms(verse)


def test_structure_tags_change_the_arrangement(engine: SynthEngine) -> None:
    a = render(engine, lyrics="[intro]\n[verse]\n[chorus]\n[outro]", duration=16.0)
    b = render(engine, lyrics="[chorus]\n[chorus]\n[bridge]\n[chorus]", duration=16.0)
    assert not np.array_equal(a, b)
    intro_rms = rms(a[:, : SR * 2])
    chorus_rms = rms(b[:, : SR * 2])
    assert chorus_rms > intro_rms


# -- vocal guide line ---------------------------------------------------------------------------


@has_espeak
def test_vocal_guide_line_present(engine: SynthEngine) -> None:
    lyrics = "[verse]\nthe morning light is on the hill\nand every road leads home"
    fields = {"caption": "ambient pad", "duration": 10.0, "bpm": 80}
    sung = render(engine, lyrics=lyrics, **fields)
    plain = render(engine, lyrics="[verse]", **fields)
    assert sung.shape == plain.shape
    assert not np.array_equal(sung, plain)

    def speech_share(x: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(x.mean(axis=0))) ** 2
        freqs = np.fft.rfftfreq(x.shape[1], 1 / SR)
        return float(power[(freqs > 1000) & (freqs < 4000)].sum() / power.sum())

    assert speech_share(sung) > 1.5 * speech_share(plain)
    np.testing.assert_array_equal(sung, render(engine, lyrics=lyrics, **fields))


def test_vocal_skipped_without_espeak(caplog: pytest.LogCaptureFixture) -> None:
    quiet = SynthEngine(espeak=Espeak(SR, binary="no-such-espeak-binary"))
    with caplog.at_level("WARNING"):
        track = quiet.text2music(spec(lyrics="[verse]\nhello there", duration=3.0))[0]
    assert track.audio.frames == 3 * SR
    assert "without the vocal" in caplog.text


@has_espeak
def test_espeak_lines_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    espeak = Espeak(SR)
    runs: list[str] = []
    real_run = espeak._run

    def counting_run(text: str, voice: str, wpm: int) -> np.ndarray | None:
        runs.append(text)
        return real_run(text, voice, wpm)

    monkeypatch.setattr(espeak, "_run", counting_run)
    local = SynthEngine(espeak=espeak)
    s = spec(lyrics="[verse]\nfirst line here\nsecond line here\n[chorus]\nfirst line here",
             duration=9.0, bpm=120)  # fmt: skip
    first = local.text2music(s)[0].audio.samples
    assert set(runs) == {"first line here", "second line here"}
    calls = len(runs)
    second = local.text2music(replace(s, seeds=(8,)))[0].audio.samples
    assert len(runs) == calls  # every line came from the cache
    assert not np.array_equal(first, second)


def test_espeak_voice_mapping() -> None:
    assert espeak_voice("en") == "en-us"
    assert espeak_voice("zh") == "cmn"
    assert espeak_voice("pt-BR") == "pt-br"
    assert espeak_voice("xx") == "en-us"
    with pytest.raises(ValueError):
        parse_wav_pcm16(b"not a wav")


# -- progress --------------------------------------------------------------------------------


def test_steps_counted_exactly(engine: SynthEngine) -> None:
    s = spec(lyrics="[intro]\n[verse]\nla la\n[chorus]\n[outro]", seeds=(1, 2), duration=6.0)
    calls: list[tuple[int, int]] = []
    engine.text2music(s, lambda done, total: calls.append((done, total)))
    total = engine.total_steps(s)
    assert total == 8
    assert calls == [(i, total) for i in range(1, total + 1)]


def test_step_exception_propagates(engine: SynthEngine) -> None:
    class Cancelled(Exception):
        pass

    def on_step(done: int, total: int) -> None:
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        engine.text2music(spec(duration=30.0, seeds=(1, 2)), on_step)


# -- repaint and cover ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(engine: SynthEngine) -> Audio:
    return engine.text2music(spec(caption="rock", bpm=96, duration=12.0, seeds=(11,)))[0].audio


def test_repaint_changes_only_the_region(engine: SynthEngine, source: Audio) -> None:
    s = spec(task="repaint", caption="jazz piano", source=source, repaint_start=4.0,
             repaint_end=8.0, seeds=(5,))  # fmt: skip
    calls: list[int] = []
    out = engine.repaint(s, lambda done, total: calls.append(done))[0].audio.samples
    assert len(calls) == engine.total_steps(s)
    assert out.shape == source.samples.shape
    start, end = 4 * SR, 8 * SR
    np.testing.assert_array_equal(out[:, :start], source.samples[:, :start])
    np.testing.assert_array_equal(out[:, end:], source.samples[:, end:])
    inside = out[:, start + SR // 10 : end - SR // 10]
    assert not np.allclose(inside, source.samples[:, start + SR // 10 : end - SR // 10])
    assert rms(inside) > 0.01
    # the crossfade keeps the seam continuous: no jump bigger than the music's own steps
    assert abs(out[0, start] - out[0, start - 1]) < 0.2


def test_repaint_past_the_end_extends(engine: SynthEngine, source: Audio) -> None:
    s = spec(task="repaint", source=source, repaint_start=10.0, repaint_end=15.0)
    out = run_task(engine, s)[0].audio
    assert out.frames == 15 * SR
    np.testing.assert_array_equal(out.samples[:, : 10 * SR], source.samples[:, : 10 * SR])
    assert rms(out.samples[:, 13 * SR :]) > 0.01


def test_repaint_resamples_mono_source_once(engine: SynthEngine) -> None:
    t = np.arange(22050 * 4) / 22050
    mono = Audio((0.3 * np.sin(2 * np.pi * 220 * t))[None, :].astype(np.float32), 22050)
    out = engine.repaint(spec(task="repaint", source=mono, repaint_start=1.0, repaint_end=2.0))
    samples = out[0].audio.samples
    assert samples.shape == (2, 4 * SR)
    np.testing.assert_array_equal(samples[0, :SR], samples[1, :SR])
    assert rms(samples[:, :SR]) > 0.1


def test_repaint_rejects_empty_region(engine: SynthEngine, source: Audio) -> None:
    with pytest.raises(EngineInputError, match="empty"):
        engine.repaint(spec(task="repaint", source=source, repaint_start=5.0, repaint_end=5.0))


def test_cover_strength_zero_is_text2music(engine: SynthEngine, source: Audio) -> None:
    base = spec(caption="energetic edm", duration=12.0, seeds=(9,))
    cover = replace(base, task="cover", source=source, cover_strength=0.0)
    calls: list[int] = []
    covered = engine.cover(cover, lambda done, total: calls.append(done))[0].audio.samples
    np.testing.assert_array_equal(covered, engine.text2music(base)[0].audio.samples)
    assert len(calls) == engine.total_steps(cover) == engine.total_steps(base)


def test_cover_partial_strength_blends_tempo(engine: SynthEngine, source: Audio) -> None:
    base = spec(task="cover", caption="energetic edm", source=source, duration=12.0, seeds=(9,))
    free = int(engine.text2music(replace(base, task="text2music", source=None))[0].metas["bpm"])
    half = engine.cover(replace(base, cover_strength=0.5))[0]
    follow = int(engine.cover(replace(base, cover_strength=1.0))[0].metas["bpm"])
    assert min(free, follow) < int(half.metas["bpm"]) < max(free, follow)
    assert half.metas["cover_strength"] == 0.5
    fixed = engine.cover(replace(base, bpm=100, cover_strength=1.0))[0]
    assert fixed.metas["bpm"] == 100  # an explicit tempo beats the source's


def test_cover_follows_source_tempo_and_energy(engine: SynthEngine) -> None:
    lyrics = "[intro]\n[verse]\n[chorus]\n[outro]"
    source = engine.text2music(spec(caption="rock", bpm=92, lyrics=lyrics, duration=16.0))[0]
    cover = spec(task="cover", caption="energetic edm", source=source.audio, cover_strength=1.0,
                 duration=16.0, seeds=(2,))  # fmt: skip
    track = engine.cover(cover)[0]
    assert int(track.metas["bpm"]) == pytest.approx(92, rel=0.03)
    assert tempo_matches(measured_bpm(track.audio.samples), 92)
    free = engine.text2music(replace(cover, task="text2music", source=None))[0]
    assert int(free.metas["bpm"]) > 120

    def contour(x: np.ndarray) -> np.ndarray:
        beat = SR // 2
        mono = x.mean(axis=0)
        return np.sqrt(np.mean(mono[: mono.size // beat * beat].reshape(-1, beat) ** 2, axis=1))

    src_c, cov_c = contour(source.audio.samples), contour(track.audio.samples)
    free_c = contour(free.audio.samples)
    assert np.corrcoef(src_c, cov_c)[0, 1] > 0.6
    assert np.corrcoef(src_c, cov_c)[0, 1] > np.corrcoef(src_c, free_c)[0, 1]


# -- parsing -------------------------------------------------------------------------------------


def test_parse_key_and_time_signature() -> None:
    assert parse_key("F# minor") == parse_key("Gb min")
    key = parse_key("Bb minor")
    assert key is not None and key.name == "Bb minor"
    assert parse_key("H major") is None
    assert parse_key("") is None
    for text, beats in [("4", 4), ("3", 3), ("4/4", 4), ("6/8", 6), ("3/4", 3)]:
        meter = parse_time_signature(text)
        assert meter is not None and meter.beats == beats
    assert parse_time_signature("waltz") is None


def test_bad_duration_is_input_error(engine: SynthEngine) -> None:
    with pytest.raises(EngineInputError):
        engine.text2music(spec(duration=0.0))
