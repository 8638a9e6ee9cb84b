"""models/audio.py: round trips per format, atomic writes, and garbage rejected as input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models import audio as audio_io
from models.audio import (
    AUDIO_FORMATS,
    MEDIA_TYPES,
    decode_audio,
    fit_length,
    peak_normalize,
    probe_duration,
    resample,
    to_channels,
    write_audio,
)
from models.engine import Audio, EngineInputError

SR = 44100


def _tone(seconds: float = 1.5, sample_rate: int = SR, channels: int = 2) -> Audio:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    mono = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    return Audio(np.tile(mono, (channels, 1)).astype(np.float32), sample_rate)


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_round_trip_each_format(tmp_path: Path, fmt: str) -> None:
    src = _tone()
    dest = write_audio(src, tmp_path / f"song.{fmt}", fmt)
    assert dest == tmp_path / f"song.{fmt}"
    assert list(tmp_path.iterdir()) == [dest]  # no temporary file left behind
    back = decode_audio(dest)
    assert back.channels == 2
    assert back.sample_rate == SR
    assert back.samples.dtype == np.float32
    # lossy codecs add encoder delay/padding; a few tens of ms is fine
    assert abs(back.duration - src.duration) < 0.1
    assert abs(probe_duration(dest) - src.duration) < 0.1
    # the tone survives: dominant frequency is still 440 Hz
    spectrum = np.abs(np.fft.rfft(back.samples[0, : SR // 2]))
    freq = np.argmax(spectrum) * SR / (SR // 2)
    assert abs(freq - 440.0) < 5.0
    assert fmt in MEDIA_TYPES


def test_wav_round_trip_is_sample_accurate(tmp_path: Path) -> None:
    src = _tone(0.25)
    back = decode_audio(write_audio(src, tmp_path / "a.wav", "wav"))
    assert back.frames == src.frames
    assert np.max(np.abs(back.samples - src.samples)) < 1e-4  # 16-bit quantisation


def test_write_clips_loud_and_nonfinite_input(tmp_path: Path) -> None:
    loud = Audio(np.array([[3.0, -4.0, np.nan, 0.5]], dtype=np.float32), SR)
    back = decode_audio(write_audio(loud, tmp_path / "loud.wav", "wav"))
    assert np.max(np.abs(back.samples)) <= 1.0
    assert np.isfinite(back.samples).all()
    assert back.samples[0, 1] < 0 < back.samples[0, 0]


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "out.flac"

    def exploding_write(handle: object, *args: object, **kwargs: object) -> None:
        handle.write(b"fLaC partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(audio_io.sf, "write", exploding_write)
    with pytest.raises(OSError, match="disk full"):
        write_audio(_tone(), dest, "flac")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = write_audio(_tone(0.5), tmp_path / "out.wav", "wav")
    before = dest.read_bytes()

    def exploding_write(*args: object, **kwargs: object) -> None:
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(audio_io.sf, "write", exploding_write)
    with pytest.raises(RuntimeError):
        write_audio(_tone(1.0), dest, "wav")
    assert dest.read_bytes() == before


def test_unknown_format_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        write_audio(_tone(), tmp_path / "x.aiff", "aiff")


def test_mp3_resamples_unsupported_rate(tmp_path: Path) -> None:
    back = decode_audio(write_audio(_tone(1.0, sample_rate=44000), tmp_path / "a.mp3", "mp3"))
    assert back.sample_rate == 44100
    assert abs(back.duration - 1.0) < 0.1


def test_garbage_file_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_bytes(b"this is not audio at all " * 200)
    with pytest.raises(EngineInputError, match="not a readable audio file"):
        decode_audio(path)
    with pytest.raises(EngineInputError):
        probe_duration(path)


def test_empty_and_missing_files_are_input_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(EngineInputError):
        decode_audio(empty)
    with pytest.raises(EngineInputError):
        decode_audio(tmp_path / "missing.wav")


def test_zero_frame_file_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(str(path), np.zeros((0, 2), dtype=np.float32), SR)
    with pytest.raises(EngineInputError, match="no samples"):
        decode_audio(path)
    with pytest.raises(EngineInputError, match="no samples"):
        probe_duration(path)


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_truncated_file_is_input_error(tmp_path: Path, fmt: str) -> None:
    good = write_audio(_tone(2.0), tmp_path / f"good.{fmt}", fmt)
    data = good.read_bytes()
    # flac: cut mid-stream (decoder loses sync); wav: cut inside the header (no sample data)
    cut = len(data) // 2 if fmt == "flac" else 30
    bad = tmp_path / f"bad.{fmt}"
    bad.write_bytes(data[:cut])
    with pytest.raises(EngineInputError):
        decode_audio(bad)


def test_too_long_is_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_audio(_tone(2.0), tmp_path / "long.wav", "wav")
    monkeypatch.setattr(audio_io, "MAX_DECODE_SECONDS", 1.0)
    with pytest.raises(EngineInputError, match="limit"):
        decode_audio(path)
    with pytest.raises(EngineInputError, match="limit"):
        probe_duration(path)


def test_resample_changes_rate_and_length() -> None:
    src = _tone(1.0, sample_rate=22050)
    out = resample(src, SR)
    assert out.sample_rate == SR
    assert abs(out.frames - SR) <= 1
    assert out.samples.dtype == np.float32
    assert resample(out, SR) is out


def test_to_channels_mono_stereo() -> None:
    mono = _tone(0.1, channels=1)
    stereo = to_channels(mono, 2)
    assert stereo.channels == 2
    np.testing.assert_array_equal(stereo.samples[0], stereo.samples[1])
    back = to_channels(stereo, 1)
    np.testing.assert_allclose(back.samples, mono.samples, atol=1e-7)


def test_fit_length_pads_and_trims() -> None:
    src = _tone(0.1)
    longer = fit_length(src, src.frames + 100)
    assert longer.frames == src.frames + 100
    assert not longer.samples[:, src.frames :].any()
    shorter = fit_length(src, 10)
    np.testing.assert_array_equal(shorter.samples, src.samples[:, :10])


def test_peak_normalize() -> None:
    out = peak_normalize(_tone(0.1), peak_db=-6.0)
    assert abs(np.max(np.abs(out.samples)) - 10 ** (-6 / 20)) < 1e-4
    silent = Audio(np.zeros((2, 10), dtype=np.float32), SR)
    assert not peak_normalize(silent).samples.any()
