"""Mixing: pan each part into stereo, a cheap comb/allpass reverb on a send, master level."""

from __future__ import annotations

import numpy as np

# part -> (gain, pan -1 left .. +1 right, reverb send 0..1)
PART_MIX: dict[str, tuple[float, float, float]] = {
    "kick": (0.9, 0.0, 0.0), "snare": (0.55, 0.05, 0.25), "hat": (0.22, 0.35, 0.1),
    "open": (0.2, 0.35, 0.1), "clap": (0.45, -0.05, 0.3), "crash": (0.25, -0.3, 0.2),
    "ride": (0.25, 0.3, 0.15), "bass": (0.6, 0.0, 0.0), "piano": (0.32, -0.2, 0.3),
    "guitar": (0.3, 0.35, 0.2), "strings": (0.3, -0.4, 0.45), "organ": (0.3, 0.25, 0.3),
    "synth": (0.28, 0.3, 0.3), "pad": (0.3, -0.3, 0.5), "bells": (0.22, 0.45, 0.5),
    "lead": (0.38, 0.1, 0.35), "vocal": (0.42, 0.0, 0.25),
}  # fmt: skip
DEFAULT_MIX = (0.3, 0.0, 0.2)
# Freeverb-style comb and allpass delays in samples at 44.1 kHz (halved for the half-rate
# reverb); the right channel's are offset.
COMB_DELAYS = (1116, 1277, 1422, 1617)
ALLPASS_DELAYS = (556, 341)
STEREO_SPREAD = 23  # samples
COMB_FEEDBACK = 0.78
ALLPASS_GAIN = 0.5
REVERB_LEVEL = 0.35
MIN_COMB_BLOCK = 2048  # samples: comb recurrences step through blocks at least this long
SOFT_CLIP = 0.6  # knee of the master soft clip; 0 = none
MASTER_PEAK = 0.89  # linear, about -1 dBFS


def pan_gains(pan: float) -> tuple[float, float]:
    """Equal-power pan law."""
    angle = (pan + 1.0) * np.pi / 4.0
    return float(np.cos(angle)), float(np.sin(angle))


def _comb(x: np.ndarray, delay: int, feedback: float) -> np.ndarray:
    """Feedback comb y[n] = x[n] + g*y[n-D], exact, in a few vector operations.

    Unrolling once, y[n] = (x[n] + g*x[n-D]) + g^2*y[n-2D], doubles the delay; after enough
    doublings the recurrence runs a whole block of >= MIN_COMB_BLOCK samples per step.
    """
    x = x.astype(np.float32)
    gain = feedback
    while delay < MIN_COMB_BLOCK:
        shifted = np.zeros_like(x)
        shifted[delay:] = x[:-delay]
        x = x + np.float32(gain) * shifted
        delay, gain = 2 * delay, gain * gain
    blocks = -(-x.size // delay)
    y = np.zeros(blocks * delay, dtype=np.float32)
    y[: x.size] = x
    view = y.reshape(blocks, delay)
    g = np.float32(gain)
    for k in range(1, blocks):
        view[k] += g * view[k - 1]
    return y[: x.size]


def _allpass(x: np.ndarray, delay: int, gain: float) -> np.ndarray:
    """Schroeder allpass y[n] = -g*x[n] + x[n-D] + g*y[n-D].

    With v[n] = y[n] + g*x[n] this is v[n] = (1 - g^2) x[n-D] + g v[n-D]: a comb on the
    delayed input.
    """
    delayed = np.zeros(x.size, dtype=np.float32)
    delayed[delay:] = x[:-delay] * np.float32(1.0 - gain * gain)
    return _comb(delayed, delay, gain) - np.float32(gain) * x


def _half_rate(x: np.ndarray) -> np.ndarray:
    """Average sample pairs: the reverb runs at half rate, its tail needs no top octave."""
    n = x.size // 2 * 2
    return 0.5 * (x[:n:2] + x[1:n:2])


def _double_rate(x: np.ndarray, frames: int) -> np.ndarray:
    """Linear interpolation back to the full rate, ``frames`` long."""
    out = np.zeros(frames, dtype=np.float32)
    even = out[0::2]
    even[: x.size] = x[: even.size]
    odd = out[1::2]
    m = min(odd.size, x.size)
    odd[: m - 1] = 0.5 * (x[: m - 1] + x[1:m])
    return out


def reverb(send: np.ndarray) -> np.ndarray:
    """Stereo (2, n) reverb of a mono send: parallel combs then series allpasses, half rate."""
    out = np.empty((2, send.size), dtype=np.float32)
    low = _half_rate(send)
    for ch, spread in enumerate((0, STEREO_SPREAD)):
        wet = sum(_comb(low, (d + spread) // 2, COMB_FEEDBACK) for d in COMB_DELAYS)
        for d in ALLPASS_DELAYS:
            wet = _allpass(wet, (d + spread) // 2, ALLPASS_GAIN)
        out[ch] = _double_rate(wet * np.float32(REVERB_LEVEL / len(COMB_DELAYS)), send.size)
    return out


class Mixer:
    """Stereo dry bus plus a mono reverb send; parts are panned as their notes arrive.

    Mixing note by note (instead of keeping one full-length buffer per part) keeps memory at
    three song-length rows however many instruments play, which matters for 10-minute songs.
    Parts that need whole-signal processing (distorted guitar) get their own buffer.
    """

    def __init__(self, frames: int, separate: tuple[str, ...] = ()) -> None:
        self.frames = frames
        self.dry = np.zeros((2, frames), dtype=np.float32)
        self.send = np.zeros(frames, dtype=np.float32)
        self.separate = {name: np.zeros(frames, dtype=np.float32) for name in separate}

    @staticmethod
    def levels(name: str) -> tuple[float, float, float]:
        """(left, right, send) gains of a part."""
        gain, pan, wet = PART_MIX.get(name, DEFAULT_MIX)
        left, right = pan_gains(pan)
        return gain * left, gain * right, gain * wet

    def add(self, name: str, start: int, wave: np.ndarray, velocity: float) -> None:
        """Mix ``wave`` (mono) into the buses at frame ``start``, scaled by ``velocity``."""
        end = min(start + wave.size, self.frames)
        if end <= start:
            return
        piece = wave[: end - start]
        if name in self.separate:
            self.separate[name][start:end] += piece * np.float32(velocity)
            return
        left, right, wet = self.levels(name)
        self.dry[0, start:end] += piece * np.float32(velocity * left)
        self.dry[1, start:end] += piece * np.float32(velocity * right)
        if wet:
            self.send[start:end] += piece * np.float32(velocity * wet)

    def stereo(self) -> np.ndarray:
        """Separate parts panned in, plus the reverb of the send: (2, frames) float32."""
        for name in sorted(self.separate):  # fixed order: float sums must not depend on dicts
            self.add_signal(name, self.separate[name])
        self.dry += reverb(self.send)
        return self.dry

    def add_signal(self, name: str, signal: np.ndarray) -> None:
        left, right, wet = self.levels(name)
        self.dry[0] += signal * np.float32(left)
        self.dry[1] += signal * np.float32(right)
        if wet:
            self.send += signal * np.float32(wet)


def _peak(x: np.ndarray) -> float:
    """Largest absolute sample, without an |x| temporary the size of the song."""
    return max(float(x.max()), -float(x.min())) if x.size else 0.0


def master(stereo: np.ndarray) -> np.ndarray:
    """Soft clip x(1+k)/(1+k|x|) (cheaper than tanh), then peak-normalise to MASTER_PEAK.

    Works in place on ``stereo`` (float32) with one temporary, to bound memory on long songs.
    """
    peak = _peak(stereo)
    if peak <= 0.0:
        return stereo
    stereo *= np.float32(1.0 / peak)
    knee = np.abs(stereo)
    knee *= np.float32(SOFT_CLIP)
    knee += np.float32(1.0)
    stereo *= np.float32(1.0 + SOFT_CLIP)
    stereo /= knee
    del knee
    stereo *= np.float32(MASTER_PEAK / _peak(stereo))
    return stereo
