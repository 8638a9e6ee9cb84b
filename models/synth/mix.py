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
# Freeverb-style comb and allpass delays in samples at 44.1 kHz; the right channel is offset.
COMB_DELAYS = (1116, 1277, 1422, 1617)
ALLPASS_DELAYS = (556, 341)
STEREO_SPREAD = 23  # samples
COMB_FEEDBACK = 0.78
ALLPASS_GAIN = 0.5
REVERB_LEVEL = 0.35
MASTER_PEAK = 0.89  # linear, about -1 dBFS


def pan_gains(pan: float) -> tuple[float, float]:
    """Equal-power pan law."""
    angle = (pan + 1.0) * np.pi / 4.0
    return float(np.cos(angle)), float(np.sin(angle))


def _comb(x: np.ndarray, delay: int, feedback: float) -> np.ndarray:
    """y[n] = x[n] + g*y[n-D], computed a block of D samples at a time (exact)."""
    n = x.size
    blocks = -(-n // delay)
    y = np.zeros(blocks * delay, dtype=np.float32)
    y[:n] = x
    view = y.reshape(blocks, delay)
    for k in range(1, blocks):
        view[k] += feedback * view[k - 1]
    return y[:n]


def _allpass(x: np.ndarray, delay: int, gain: float) -> np.ndarray:
    """Schroeder allpass y[n] = -g*x[n] + x[n-D] + g*y[n-D], blockwise like _comb."""
    n = x.size
    blocks = -(-n // delay)
    xs = np.zeros(blocks * delay, dtype=np.float32)
    xs[:n] = x
    xv = xs.reshape(blocks, delay)
    y = np.empty_like(xv)
    y[0] = -gain * xv[0]
    for k in range(1, blocks):
        y[k] = -gain * xv[k] + xv[k - 1] + gain * y[k - 1]
    return y.reshape(-1)[:n]


def reverb(send: np.ndarray) -> np.ndarray:
    """Stereo (2, n) reverb of a mono send: parallel combs then series allpasses."""
    out = np.empty((2, send.size), dtype=np.float32)
    for ch, spread in enumerate((0, STEREO_SPREAD)):
        wet = sum(_comb(send, d + spread, COMB_FEEDBACK) for d in COMB_DELAYS)
        for d in ALLPASS_DELAYS:
            wet = _allpass(wet, d + spread, ALLPASS_GAIN)
        out[ch] = wet * (REVERB_LEVEL / len(COMB_DELAYS))
    return out


def mix_parts(parts: dict[str, np.ndarray], frames: int) -> np.ndarray:
    """Sum mono parts into stereo (2, frames) with gain, pan and reverb send per part."""
    dry = np.zeros((2, frames), dtype=np.float32)
    send = np.zeros(frames, dtype=np.float32)
    for name in sorted(parts):  # fixed order: float sums must not depend on dict order
        signal = parts[name][:frames]
        gain, pan, wet = PART_MIX.get(name, (0.3, 0.0, 0.2))
        left, right = pan_gains(pan)
        dry[0, : signal.size] += signal * (gain * left)
        dry[1, : signal.size] += signal * (gain * right)
        if wet:
            send[: signal.size] += signal * (gain * wet)
    return dry + reverb(send)


def master(stereo: np.ndarray) -> np.ndarray:
    """Gentle soft clip, then peak-normalise to MASTER_PEAK; silence stays silence."""
    peak = float(np.max(np.abs(stereo))) if stereo.size else 0.0
    if peak <= 0.0:
        return stereo.astype(np.float32)
    x = stereo / peak
    x = np.tanh(1.5 * x) / np.tanh(1.5)
    return (x * (MASTER_PEAK / float(np.max(np.abs(x))))).astype(np.float32)
