"""Listening to a source song: tempo by onset autocorrelation, loudness contour by RMS."""

from __future__ import annotations

import numpy as np

ONSET_HOP = 256  # samples per onset-envelope frame (5.8 ms at 44.1 kHz)
MIN_TEMPO, MAX_TEMPO = 60.0, 200.0  # bpm search range
TEMPO_PRIOR_BPM = 110.0  # mild preference that settles octave ambiguity
TEMPO_PRIOR_OCTAVES = 1.0  # width (standard deviation) of that preference, in octaves
REFINE_BEATS = 4  # refine the beat period on the peak this many beats away
DEFAULT_TEMPO = 120.0  # bpm when the source has no usable onsets


def onset_envelope(mono: np.ndarray) -> np.ndarray:
    """Spectral flux per hop (rise of log magnitude, summed over bins), mean removed."""
    frames = mono.size // ONSET_HOP
    if frames < 3:
        return np.zeros(0)
    blocks = mono[: frames * ONSET_HOP].reshape(frames, ONSET_HOP) * np.hanning(ONSET_HOP)
    mags = np.log1p(100.0 * np.abs(np.fft.rfft(blocks, axis=1)))
    flux = np.maximum(np.diff(mags, axis=0), 0.0).sum(axis=1)
    return flux - flux.mean()


def _peak(values: np.ndarray, index: int) -> float:
    """Parabolic interpolation of a local maximum's position."""
    if 0 < index < values.size - 1:
        a, b, c = values[index - 1], values[index], values[index + 1]
        denom = a - 2 * b + c
        if denom < 0:
            return index + 0.5 * (a - c) / denom
    return float(index)


def estimate_tempo(mono: np.ndarray, sample_rate: int) -> float:
    """Beats per minute of ``mono``: the lag whose multiples (1..4 beats) all recur most.

    Summing the autocorrelation at one to four beat periods favours the beat over off-beat
    patterns; an octave error (half or double) remains possible, as with any onset method.
    """
    env = onset_envelope(mono)
    fps = sample_rate / ONSET_HOP
    if env.size < 8 or not env.any():
        return DEFAULT_TEMPO
    size = 1 << int(np.ceil(np.log2(2 * env.size)))
    spectrum = np.fft.rfft(env, size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[: env.size]
    lo = int(fps * 60.0 / MAX_TEMPO)
    hi = min(int(fps * 60.0 / MIN_TEMPO) + 1, ac.size // REFINE_BEATS - 2)
    if hi <= lo:
        return DEFAULT_TEMPO
    lags = np.arange(lo, hi)
    score = np.zeros(lags.size)
    for k in range(1, REFINE_BEATS + 1):
        shifted = [ac[np.clip(lags * k + d, 0, ac.size - 1)] for d in range(-k, k + 1)]
        score += np.maximum.reduce(shifted)  # tolerate the rounding of k * lag
    bpms = 60.0 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpms / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2)
    best = int(lags[np.argmax(score * prior)])
    far = REFINE_BEATS * best  # one frame of error there is REFINE_BEATS times smaller
    window = max(2, far // 25)
    local = int(np.argmax(ac[far - window : far + window + 1])) + far - window
    return float(60.0 * fps * REFINE_BEATS / _peak(ac, local))


def rms_contour(mono: np.ndarray, window: int) -> np.ndarray:
    """RMS per window of ``window`` samples (the last partial window included)."""
    n = -(-mono.size // window)
    padded = np.zeros(n * window)
    padded[: mono.size] = mono
    return np.sqrt(np.mean(np.square(padded.reshape(n, window)), axis=1))
