"""The voices: wavetable instruments with envelopes, and a small synthesised drum kit.

Each pitched note is two wavetables (a bright attack fading into a mellow body) under an
attack/decay/sustain/release envelope, optionally doubled by a detuned oscillator. Table lookup
keeps a note to a handful of vector operations; notes are cached by (voice, pitch, length)
because songs repeat themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.synth.theory import midi_to_hz

SAMPLE_RATE = 44100  # Hz
TABLE_SIZE = 4096  # samples per wavetable period
KICK_LOW_HZ = 41.0  # the kick's pitch sweep lands in [41, 82) Hz
SNARE_LOW_HZ = 150.0  # the snare's tone sits in [150, 300) Hz


def harmonic_table(amplitudes: dict[int, float] | list[float]) -> np.ndarray:
    """One period of a sum of harmonics (1-based), normalised to peak 1."""
    items = amplitudes.items() if isinstance(amplitudes, dict) else enumerate(amplitudes, 1)
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    table = np.zeros(TABLE_SIZE)
    for harmonic, amp in items:
        table += amp * np.sin(2 * np.pi * harmonic * phase)
    return (table / np.max(np.abs(table))).astype(np.float32)


def _saw(n: int, rolloff: float = 1.0) -> np.ndarray:
    return harmonic_table([1.0 / h**rolloff for h in range(1, n + 1)])


@dataclass(frozen=True)
class Voice:
    """A pitched instrument. Times in seconds; levels linear."""

    name: str
    bright: np.ndarray  # wavetable at the onset
    mellow: np.ndarray  # wavetable the tone settles into
    bright_decay: float  # s, time constant of the bright -> mellow fade
    attack: float  # s
    decay: float  # s, time constant from peak to sustain
    sustain: float  # level reached after the decay
    release: float  # s, linear fade after note-off
    detune_cents: float = 0.0  # second oscillator; 0 = single oscillator
    gain: float = 1.0


VOICES: dict[str, Voice] = {
    "piano": Voice("piano", _saw(12, 1.6), harmonic_table([1.0, 0.35, 0.12, 0.05]), 0.15,
                   0.003, 0.7, 0.05, 0.15),
    "guitar": Voice("guitar", _saw(16, 1.0), harmonic_table([1.0, 0.5, 0.25, 0.1]), 0.08,
                    0.002, 0.4, 0.12, 0.08),
    "strings": Voice("strings", _saw(14, 1.0), _saw(10, 1.3), 0.5, 0.25, 1.5, 0.8, 0.35,
                     detune_cents=9.0, gain=0.6),
    "organ": Voice("organ", harmonic_table({1: 1.0, 2: 0.8, 3: 0.6, 4: 0.5, 6: 0.3, 8: 0.3}),
                   harmonic_table({1: 1.0, 2: 0.7, 3: 0.5, 4: 0.3}), 0.1, 0.01, 0.5, 0.9, 0.05,
                   gain=0.55),
    "synth": Voice("synth", _saw(20, 1.0), _saw(12, 1.2), 0.3, 0.005, 0.25, 0.6, 0.1,
                   detune_cents=12.0, gain=0.6),
    "pad": Voice("pad", _saw(10, 1.5), _saw(6, 1.8), 1.0, 0.4, 2.0, 0.85, 0.6,
                 detune_cents=10.0, gain=0.5),
    "bass": Voice("bass", _saw(8, 1.5), harmonic_table([1.0, 0.3, 0.1]), 0.1, 0.005, 0.4,
                  0.55, 0.06),
    "bells": Voice("bells", harmonic_table({1: 1.0, 2: 0.3, 3: 0.5, 5: 0.35, 8: 0.2}),
                   harmonic_table({1: 1.0, 3: 0.2}), 0.2, 0.001, 0.9, 0.0, 0.4, gain=0.6),
}  # fmt: skip


def _oscillator(table: np.ndarray, freq: float, frames: int) -> np.ndarray:
    phase = np.arange(frames) * (freq / SAMPLE_RATE)
    idx = ((phase - np.floor(phase)) * TABLE_SIZE).astype(np.intp)
    return table[idx]


def envelope(voice: Voice, length: int, total: int) -> np.ndarray:
    """Amplitude over ``total`` frames for a note held ``length`` frames, then released."""
    t = np.arange(total, dtype=np.float32) / np.float32(SAMPLE_RATE)
    attack = np.minimum(t / np.float32(max(voice.attack, 1e-4)), np.float32(1.0))
    body = voice.sustain + (1.0 - voice.sustain) * np.exp(-t / np.float32(voice.decay))
    env = attack * body
    tail = total - length
    if tail > 0:
        env[length:] *= np.linspace(1.0, 0.0, tail, dtype=np.float32)
    return env


def render_note(voice: Voice, midi: int, length: int, env: np.ndarray | None = None) -> np.ndarray:
    """One note, ``length`` frames held plus the release tail, float32 mono."""
    total = length + round(voice.release * SAMPLE_RATE)
    if env is None:
        env = envelope(voice, length, total)
    freq = midi_to_hz(midi)
    bright = _oscillator(voice.bright, freq, total)
    mellow = _oscillator(voice.mellow, freq, total)
    fade = np.exp(
        np.arange(total, dtype=np.float32) / np.float32(-voice.bright_decay * SAMPLE_RATE)
    )
    wave = mellow + (bright - mellow) * fade
    if voice.detune_cents:
        detuned = freq * 2.0 ** (voice.detune_cents / 1200.0)
        wave = 0.5 * (wave + _oscillator(voice.mellow, detuned, total))
    return wave * (env * np.float32(voice.gain))


class NoteCache:
    """Rendered notes by (voice, pitch, length), envelopes by (voice, length); one per song."""

    def __init__(self) -> None:
        self._notes: dict[tuple[str, int, int], np.ndarray] = {}
        self._envelopes: dict[tuple[str, int], np.ndarray] = {}

    def note(self, voice: Voice, midi: int, length: int) -> np.ndarray:
        key = (voice.name, midi, length)
        wave = self._notes.get(key)
        if wave is None:
            env = self._envelopes.get((voice.name, length))
            if env is None:
                total = length + round(voice.release * SAMPLE_RATE)
                env = self._envelopes[(voice.name, length)] = envelope(voice, length, total)
            wave = self._notes[key] = render_note(voice, midi, length, env)
        return wave


def _decay(seconds: float, tau: float) -> np.ndarray:
    return np.exp(-np.arange(round(seconds * SAMPLE_RATE)) / (tau * SAMPLE_RATE))


def _tuned(pitch_class: int, low_hz: float) -> float:
    """Frequency of ``pitch_class`` in the octave starting at ``low_hz``."""
    midi = 12 * np.log2(low_hz / 440.0) + 69
    note = np.ceil(midi) + (pitch_class - np.ceil(midi)) % 12
    return float(midi_to_hz(note))


def drum_kit(rng: np.random.Generator, tonic: int) -> dict[str, np.ndarray]:
    """Kick, snare, hats, clap, crash and ride, synthesised; kick and snare tuned to the key.

    Tuning the drums to the tonic (or fifth) keeps their pitched body inside the scale; the
    seed varies the colour.
    """
    fifth_kick, fifth_snare = rng.random(2) < 0.5
    kick_tune = _tuned((tonic + 7 * fifth_kick) % 12, KICK_LOW_HZ)  # where the sweep lands
    snare_tone = _tuned((tonic + 7 * fifth_snare) % 12, SNARE_LOW_HZ)
    noise = rng.standard_normal(3 * SAMPLE_RATE)

    t = np.arange(round(0.45 * SAMPLE_RATE)) / SAMPLE_RATE
    sweep = kick_tune + 110.0 * np.exp(-t / 0.035)
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * np.exp(-t / 0.16)
    kick[:40] += np.linspace(0.6, 0.0, 40)  # beater click

    n = round(0.25 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    snare_noise = np.diff(noise[: n + 1]) * 0.5
    snare = 0.55 * snare_noise * np.exp(-t / 0.07) + np.sin(2 * np.pi * snare_tone * t) * np.exp(
        -t / 0.05
    )

    hiss = np.diff(np.diff(noise[SAMPLE_RATE:], prepend=0.0), prepend=0.0) * 0.25  # ~highpass
    hat = hiss[: round(0.06 * SAMPLE_RATE)] * _decay(0.06, 0.012)
    open_hat = hiss[: round(0.3 * SAMPLE_RATE)] * _decay(0.3, 0.09)
    clap_env = np.zeros(round(0.2 * SAMPLE_RATE))
    for offset_ms in (0.0, 9.0, 18.0):
        start = round(offset_ms * SAMPLE_RATE / 1000)
        seg = _decay(0.2, 0.03)[: clap_env.size - start]
        clap_env[start:] = np.maximum(clap_env[start:], seg)
    clap = np.diff(noise[: clap_env.size + 1]) * 0.4 * clap_env
    crash = hiss[: round(1.2 * SAMPLE_RATE)] * _decay(1.2, 0.35) * 0.7
    t = np.arange(round(0.5 * SAMPLE_RATE)) / SAMPLE_RATE
    ride_partials = sum(np.sin(2 * np.pi * f * t) for f in (3100.0, 4230.0, 5370.0, 6720.0))
    ride = (0.15 * ride_partials + 0.3 * hiss[: t.size]) * np.exp(-t / 0.25) * 0.6
    kit = {
        "kick": kick,
        "snare": snare,
        "hat": hat,
        "open": open_hat,
        "clap": clap,
        "crash": crash,
        "ride": ride,
    }
    return {name: (wave / np.max(np.abs(wave))).astype(np.float32) for name, wave in kit.items()}


def drive(signal: np.ndarray, amount: float) -> np.ndarray:
    """Soft-clip distortion for rock guitars; amount 0 = clean."""
    if amount <= 0:
        return signal
    gain = 1.0 + 6.0 * amount
    peak = float(np.max(np.abs(signal))) or 1.0
    return (np.tanh(gain * signal / peak) * peak / np.tanh(gain)).astype(np.float32)
