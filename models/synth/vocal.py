"""The vocal guide line: each lyric line spoken by espeak-ng, placed on its section's bars.

espeak-ng is a separate binary (no Python binding needed) and deterministic for a given text,
voice and speed, so results are cached per process and songs stay bit-identical per seed.
Without the binary the song is rendered without a vocal and a warning is logged once.
"""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import soxr

log = logging.getLogger(__name__)

ESPEAK_BINARY = "espeak-ng"
ESPEAK_TIMEOUT = 20.0  # seconds per line; espeak takes ~50 ms for a sung-length line
ESPEAK_WORKERS = 4  # espeak-ng processes run at once when a song's lines are prefetched
MIN_WPM, MAX_WPM = 130, 320  # espeak -s range we use, words per minute
WPM_QUANTUM = 10  # speeds are rounded so that cached lines are reused across tempos
FIT_MARGIN = 1.15  # speak a little faster than the slot needs, leaving a breath at the end
FADE_SECONDS = 0.04  # fade on lines cut at the end of their slot
# songqueue / ACE-Step language codes -> espeak-ng voice names.
VOICE_NAMES: dict[str, str] = {
    "en": "en-us", "zh": "cmn", "cmn": "cmn", "yue": "yue", "ja": "ja", "ko": "ko",
    "fr": "fr-fr", "de": "de", "es": "es", "it": "it", "pt": "pt-br", "ru": "ru", "nl": "nl",
    "pl": "pl", "tr": "tr", "ar": "ar", "hi": "hi", "sv": "sv", "fi": "fi", "cs": "cs",
    "hu": "hu", "vi": "vi", "id": "id", "uk": "uk", "el": "el", "he": "he", "da": "da",
    "nb": "nb", "no": "nb", "ro": "ro", "th": "th",
}  # fmt: skip
FALLBACK_VOICE = "en-us"


def espeak_voice(language: str) -> str:
    """Map a request's vocal_language ("en", "zh", "pt-BR"...) to an espeak-ng voice."""
    code = (language or "").strip().lower().replace("_", "-")
    return VOICE_NAMES.get(code) or VOICE_NAMES.get(code.split("-")[0], FALLBACK_VOICE)


def speaking_rate(text: str, slot_seconds: float) -> int:
    """espeak words-per-minute so the line roughly fits its slot, quantised for caching."""
    words = max(1, len(text.split()))
    wpm = words * 60.0 / max(slot_seconds, 0.1) * FIT_MARGIN
    wpm = round(wpm / WPM_QUANTUM) * WPM_QUANTUM
    return int(np.clip(wpm, MIN_WPM, MAX_WPM))


def parse_wav_pcm16(data: bytes) -> tuple[np.ndarray, int]:
    """espeak's stdout WAV (streaming header with bogus sizes) -> float32 mono, sample rate."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("espeak-ng did not return a WAV stream")
    pos, rate, pcm = 12, 0, b""
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            rate = struct.unpack("<I", data[pos + 12 : pos + 16])[0]
        elif chunk == b"data":
            pcm = data[pos + 8 :]  # the size field is 0x7fffffff when streaming: read to EOF
            break
        pos += 8 + size + (size & 1)
    if not rate:
        raise ValueError("espeak-ng WAV stream has no fmt chunk")
    pcm = pcm[: len(pcm) // 2 * 2]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, rate


class Espeak:
    """Speaks lines with the espeak-ng binary; caches (text, voice, speed) -> samples."""

    def __init__(self, sample_rate: int, binary: str = ESPEAK_BINARY) -> None:
        self.sample_rate = sample_rate
        self.binary = binary
        self._cache: dict[tuple[str, str, int], np.ndarray | None] = {}
        self._lock = threading.Lock()
        self._warned = False

    @property
    def available(self) -> bool:
        found = shutil.which(self.binary) is not None
        if not found and not self._warned:
            log.warning("%s not found: rendering songs without the vocal guide line", self.binary)
            self._warned = True
        return found

    def speak(self, text: str, voice: str, wpm: int) -> np.ndarray | None:
        """Mono float32 at ``sample_rate``; None when espeak fails (logged, never raised)."""
        key = (text, voice, wpm)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        samples = self._run(text, voice, wpm)
        if samples is None and voice != FALLBACK_VOICE:
            samples = self._run(text, FALLBACK_VOICE, wpm)
        with self._lock:
            self._cache[key] = samples
        return samples

    def prefetch(self, requests: list[tuple[str, str, int]]) -> None:
        """Speak (text, voice, wpm) requests not cached yet, ESPEAK_WORKERS processes at a time."""
        with self._lock:
            todo = sorted({r for r in requests if r not in self._cache})
        if len(todo) > 1:
            with ThreadPoolExecutor(max_workers=ESPEAK_WORKERS) as pool:
                list(pool.map(lambda r: self.speak(*r), todo))

    def _run(self, text: str, voice: str, wpm: int) -> np.ndarray | None:
        # "--" ends options, so a lyric line starting with "-" is not read as a flag.
        cmd = [self.binary, "--stdout", "-v", voice, "-s", str(wpm), "--", text]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=ESPEAK_TIMEOUT, check=True)
            samples, rate = parse_wav_pcm16(done.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            log.warning("espeak-ng failed for voice %s: %s", voice, exc)
            return None
        if samples.size == 0:
            return None
        if rate != self.sample_rate:
            samples = soxr.resample(samples, rate, self.sample_rate, quality="HQ")
        return np.ascontiguousarray(samples, dtype=np.float32)


def fit_line(speech: np.ndarray, slot: int, sample_rate: int) -> np.ndarray:
    """``speech`` cut to ``slot`` frames (with a short fade if cut), peak-normalised."""
    n = min(speech.size, slot)
    piece = speech[:n].copy()
    if speech.size > n:
        fade = min(n, round(FADE_SECONDS * sample_rate))
        piece[n - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    peak = float(np.max(np.abs(piece))) if n else 0.0
    return piece / np.float32(peak) if peak > 0 else piece
