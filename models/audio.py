"""Audio I/O shared by the worker (decode sources, write results) and the API (probe uploads).

Everything goes through soundfile (libsndfile), which reads and writes wav, flac, mp3 and ogg
without an ffmpeg process. Decoding problems become ``EngineInputError`` here, once, so callers
never see libsndfile's exceptions; retrying a job whose source is garbage cannot help.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from models.engine import Audio, EngineInputError

MAX_DECODE_SECONDS = 600.0  # longest source we accept; a longer upload is a mistake or an attack
AUDIO_FORMATS: tuple[str, ...] = ("wav", "flac", "mp3", "ogg")
MEDIA_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
}
# libsndfile (format, subtype) per extension: 16-bit PCM is what players expect from wav/flac.
_SF_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
}
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
MP3_FALLBACK_RATE = 44100  # Hz; MPEG layer III cannot store arbitrary rates
PEAK_CEILING = 0.999  # linear; keeps 16-bit PCM and lossy encoders off the rails


def _info(path: Path) -> sf._SoundFileInfo:
    """soundfile.info with libsndfile's errors translated to EngineInputError."""
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise EngineInputError(f"not a readable audio file ({path.name}): {exc}") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise EngineInputError(f"audio file has no samples ({path.name})")
    if info.frames / info.samplerate > MAX_DECODE_SECONDS:
        raise EngineInputError(
            f"audio is {info.frames / info.samplerate:.0f} s long; "
            f"the limit is {MAX_DECODE_SECONDS:.0f} s ({path.name})"
        )
    return info


def probe_duration(path: Path) -> float:
    """Duration in seconds from the header only, so the API can reject uploads cheaply."""
    info = _info(path)
    return float(info.frames / info.samplerate)


def decode_audio(path: Path) -> Audio:
    """Read a wav/flac/mp3/ogg file as float32 (channels, frames); garbage is EngineInputError."""
    _info(path)  # header checks first: cheap, and they catch a 10-hour upload before reading
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise EngineInputError(f"audio file is truncated or corrupt ({path.name}): {exc}") from exc
    if data.shape[0] == 0:
        raise EngineInputError(f"audio file has no samples ({path.name})")
    samples = np.ascontiguousarray(data.T)  # (frames, channels) -> (channels, frames)
    if not np.isfinite(samples).all():
        raise EngineInputError(f"audio file contains NaN or infinite samples ({path.name})")
    return Audio(samples=samples, sample_rate=int(sample_rate))


def resample(audio: Audio, sample_rate: int) -> Audio:
    """Change the sample rate with soxr (high quality, deterministic); a no-op when equal."""
    if audio.sample_rate == sample_rate:
        return audio
    out = soxr.resample(audio.samples.T, audio.sample_rate, sample_rate, quality="HQ")
    return Audio(np.ascontiguousarray(out.T, dtype=np.float32), sample_rate)


def to_channels(audio: Audio, channels: int) -> Audio:
    """Mono -> n channels by copying, n -> mono by averaging, stereo-ish -> fewer by truncation."""
    if audio.channels == channels:
        return audio
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if audio.channels == 1:
        samples = np.repeat(audio.samples, channels, axis=0)
    elif channels == 1:
        samples = audio.samples.mean(axis=0, keepdims=True)
    elif audio.channels > channels:
        samples = audio.samples[:channels]
    else:
        extra = np.repeat(audio.samples[-1:], channels - audio.channels, axis=0)
        samples = np.concatenate([audio.samples, extra], axis=0)
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), audio.sample_rate)


def fit_length(audio: Audio, frames: int) -> Audio:
    """Pad with silence or trim at the end so the audio has exactly ``frames`` frames."""
    if audio.frames == frames:
        return audio
    if audio.frames > frames:
        return Audio(np.ascontiguousarray(audio.samples[:, :frames]), audio.sample_rate)
    pad = np.zeros((audio.channels, frames - audio.frames), dtype=audio.samples.dtype)
    return Audio(np.concatenate([audio.samples, pad], axis=1), audio.sample_rate)


def peak_normalize(audio: Audio, peak_db: float = -1.0) -> Audio:
    """Scale so the loudest sample sits at ``peak_db`` dBFS; silence stays silence."""
    peak = float(np.max(np.abs(audio.samples))) if audio.frames else 0.0
    if peak <= 0.0:
        return audio
    gain = 10.0 ** (peak_db / 20.0) / peak
    return Audio((audio.samples * gain).astype(np.float32), audio.sample_rate)


def _limited(samples: np.ndarray) -> np.ndarray:
    """Replace non-finite values and scale down if the peak would clip the encoder."""
    clean = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    peak = float(np.max(np.abs(clean))) if clean.size else 0.0
    if peak > PEAK_CEILING:
        clean = clean * np.float32(PEAK_CEILING / peak)
    return clean


def write_audio(audio: Audio, dest: Path, fmt: str) -> Path:
    """Write ``audio`` to ``dest`` atomically: temp file, fsync, rename; a crash leaves no stub."""
    if fmt not in _SF_FORMATS:
        raise ValueError(f"unknown audio format {fmt!r}; choose one of {AUDIO_FORMATS}")
    if fmt == "mp3" and audio.sample_rate not in MP3_SAMPLE_RATES:
        audio = resample(audio, MP3_FALLBACK_RATE)
    sf_format, subtype = _SF_FORMATS[fmt]
    samples = _limited(audio.samples)
    dest = Path(dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            sf.write(handle, samples.T, audio.sample_rate, format=sf_format, subtype=subtype)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(dest.parent)
    return dest


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself; some filesystems (and Windows) cannot open directories."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
