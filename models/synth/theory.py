"""Music theory the synth needs: keys, scales, diatonic chords, progressions, time signatures."""

from __future__ import annotations

import re
from dataclasses import dataclass

PITCH_CLASSES: dict[str, int] = {
    "C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "F": 5,
    "E#": 5, "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11,
    "CB": 11,
}  # fmt: skip
SHARP_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)  # semitones above the tonic
MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)  # natural minor
A4_HZ = 440.0
A4_MIDI = 69

# Progressions as scale degrees (0 = tonic), one chord per bar; chosen by seed.
MAJOR_PROGRESSIONS: tuple[tuple[int, ...], ...] = (
    (0, 4, 5, 3),  # I V vi IV
    (0, 5, 3, 4),  # I vi IV V
    (5, 3, 0, 4),  # vi IV I V
    (0, 3, 4, 3),  # I IV V IV
    (0, 3, 5, 4),  # I IV vi V
)
MINOR_PROGRESSIONS: tuple[tuple[int, ...], ...] = (
    (0, 5, 2, 6),  # i VI III VII
    (0, 3, 4, 0),  # i iv v i
    (0, 6, 5, 6),  # i VII VI VII
    (0, 3, 5, 4),  # i iv VI v
)
JAZZ_PROGRESSIONS: tuple[tuple[int, ...], ...] = ((1, 4, 0, 0), (0, 5, 1, 4), (2, 5, 1, 4))
BRIDGE_PROGRESSIONS: tuple[tuple[int, ...], ...] = ((3, 4, 5, 4), (5, 3, 4, 4), (3, 0, 4, 4))


@dataclass(frozen=True)
class Key:
    """A tonic pitch class and a mode; knows its scale and the diatonic chord on each degree."""

    tonic: int  # pitch class 0..11, C = 0
    minor: bool

    @property
    def steps(self) -> tuple[int, ...]:
        return MINOR_STEPS if self.minor else MAJOR_STEPS

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.tonic + s) % 12 for s in self.steps)

    @property
    def name(self) -> str:
        return f"{SHARP_NAMES[self.tonic]} {'minor' if self.minor else 'major'}"

    def degree_midi(self, degree: int, octave: int = 4) -> int:
        """MIDI note of a scale degree (any integer; wraps into neighbouring octaves)."""
        octs, idx = divmod(degree, 7)
        return 12 * (octave + 1 + octs) + self.tonic + self.steps[idx]

    def chord(self, degree: int, size: int = 3) -> tuple[int, ...]:
        """Pitch classes of the diatonic chord (stacked thirds) on ``degree``: triad or 7th."""
        return tuple((self.tonic + self.steps[(degree + 2 * i) % 7]) % 12 for i in range(size))


def parse_key(text: str) -> Key | None:
    """'C major', 'F# minor', 'Bb min', 'Am' -> Key; None when empty or not understood."""
    match = re.fullmatch(r"\s*([A-Ga-g])\s*([#b♯♭]?)\s*(.*?)\s*", text or "")
    if not match:
        return None
    letter, accidental, mode = match.groups()
    accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
    name = (letter + accidental).upper()
    if name not in PITCH_CLASSES:
        return None
    mode = mode.lower()
    if mode in ("", "maj", "major", "ionian"):
        return Key(PITCH_CLASSES[name], minor=False)
    if mode in ("m", "min", "minor", "aeolian"):
        return Key(PITCH_CLASSES[name], minor=True)
    return None


@dataclass(frozen=True)
class Meter:
    """Beats per bar and how many grid steps subdivide one beat (16ths in x/4, in x/8 too)."""

    beats: int
    steps_per_beat: int

    @property
    def steps(self) -> int:
        return self.beats * self.steps_per_beat

    @property
    def label(self) -> str:
        return str(self.beats)


def parse_time_signature(text: str) -> Meter | None:
    """'4', '3', '4/4', '3/4', '6/8', '2' -> Meter; the bpm counts the numerator's beats."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*(?:/\s*(\d{1,2}))?\s*", text or "")
    if not match:
        return None
    beats = int(match.group(1))
    unit = int(match.group(2) or 4)
    if not 2 <= beats <= 12 or unit not in (2, 4, 8, 16):
        return None
    return Meter(beats=beats, steps_per_beat=4 if unit <= 4 else 2)


def midi_to_hz(midi: float) -> float:
    return A4_HZ * 2.0 ** ((midi - A4_MIDI) / 12.0)


def nearest_in_range(pitch_class: int, low: int, high: int) -> int:
    """The MIDI note of ``pitch_class`` in [low, low + 12), used to voice chords compactly."""
    note = low + (pitch_class - low) % 12
    return note if note < high else note - 12
