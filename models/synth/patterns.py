"""What each part plays in a section: chords per bar, drum grooves, bass lines, comping, melody.

Everything here is notes on a step grid (16ths of the beat in x/4, 16ths of the eighth-note beat
in x/8); ``Grid`` turns (bar, step) into frames, with swing. No audio is made here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.synth.arrangement import Section
from models.synth.style import Style
from models.synth.theory import (
    BRIDGE_PROGRESSIONS,
    JAZZ_PROGRESSIONS,
    MAJOR_PROGRESSIONS,
    MINOR_PROGRESSIONS,
    nearest_in_range,
)

SWING_SHIFT = 2.0 / 3.0  # steps: full swing moves the off-8th from 1/2 to 2/3 of the beat
CHORD_LOW, CHORD_HIGH = 55, 67  # MIDI range for compact chord voicings (G3..G4)
BASS_LOW = 36  # MIDI C2: bass roots sit in [C2, C3)

# Section feel: overall level and which layers play.
SECTION_ENERGY: dict[str, float] = {
    "intro": 0.45, "verse": 0.62, "prechorus": 0.75, "chorus": 1.0, "bridge": 0.6,
    "inst": 0.9, "outro": 0.45,
}  # fmt: skip

# 4/4 grooves over 16 steps: sound -> step string ("x" loud, "o" soft, "." rest).
DRUM_PATTERNS: dict[str, dict[str, str]] = {
    "rock": {"kick": "x.......x.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    "pop": {"kick": "x.....x.x.......", "snare": "....x.......x...", "hat": "x.o.x.o.x.o.x.o."},
    "metal": {"kick": "x.x.x.x.x.x.x.x.", "snare": "....x.......x...", "hat": "x...x...x...x..."},
    "four": {"kick": "x...x...x...x...", "clap": "....x.......x...", "open": "..x...x...x...x."},
    "hiphop": {"kick": "x......x..x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    "jazz": {"kick": "x.......o.......", "ride": "x...x..ox...x..o", "snare": "......o.......o."},
    "funk": {"kick": "x..x..x...x..x..", "snare": "....x..o.o..x...", "hat": "xoxoxoxoxoxoxoxo"},
    "reggae": {"kick": "........x.......", "snare": "........x.......", "hat": "x.x.x.x.x.x.x.x."},
    "ballad": {"kick": "x.........x.....", "snare": "....x.......x...", "hat": "x...x...x...x..."},
}  # fmt: skip
LOUD, SOFT = 1.0, 0.45  # velocities for "x" and "o"


@dataclass(frozen=True)
class Note:
    """A pitched note: start frame (absolute), MIDI pitch, held frames, velocity 0..1."""

    start: int
    midi: int
    length: int
    velocity: float


@dataclass(frozen=True)
class Hit:
    """A drum hit: start frame, kit sound name, velocity 0..1."""

    start: int
    sound: str
    velocity: float


@dataclass(frozen=True)
class Grid:
    """Bar/step -> frame conversion for one tempo and meter."""

    bpm: float
    beats: int
    steps_per_beat: int
    swing: float
    sample_rate: int

    @property
    def steps(self) -> int:
        return self.beats * self.steps_per_beat

    @property
    def step_frames(self) -> float:
        return 60.0 / self.bpm / self.steps_per_beat * self.sample_rate

    @property
    def bar_frames(self) -> float:
        return self.step_frames * self.steps

    def frame(self, bar: int, step: float) -> int:
        shift = 0.0
        if self.swing and self.steps_per_beat == 4 and int(step) % 4 == 2:
            shift = SWING_SHIFT * self.swing
        return round((bar * self.steps + step + shift) * self.step_frames)

    def span(self, steps: float) -> int:
        return max(1, round(steps * self.step_frames))


def chords_for(section: Section, style: Style) -> list[tuple[int, ...]]:
    """Pitch classes of the chord in each bar of the section (root first)."""
    if section.kind == "bridge":
        progression = BRIDGE_PROGRESSIONS[style.progression_index % len(BRIDGE_PROGRESSIONS)]
    elif style.jazz_chords and not style.key.minor:
        progression = JAZZ_PROGRESSIONS[style.progression_index % len(JAZZ_PROGRESSIONS)]
    else:
        table = MINOR_PROGRESSIONS if style.key.minor else MAJOR_PROGRESSIONS
        progression = table[style.progression_index % len(table)]
    size = 4 if style.jazz_chords else 3
    return [style.key.chord(progression[b % len(progression)], size) for b in range(section.bars)]


def voicing(chord: tuple[int, ...], low: int = CHORD_LOW) -> list[int]:
    return sorted(nearest_in_range(pc, low, low + 12) for pc in chord)


def _generic_groove(name: str, beats: int, spb: int) -> dict[str, str]:
    """Grooves for meters other than 4/4: kick on one, backbeat in the middle, hats on beats."""
    steps = beats * spb
    kick, snare, hat = ["."] * steps, ["."] * steps, ["."] * steps
    kick[0] = "x"
    for beat in range(beats):
        hat[beat * spb] = "x" if beat == 0 else "o"
        if spb == 4:
            hat[beat * spb + 2] = "o"
    if beats == 3:
        snare[spb] = snare[2 * spb] = "o"  # oom-pah-pah
    elif beats % 2 == 0:
        snare[(beats // 2) * spb] = "x"
        if name in ("four", "metal"):
            kick[(beats // 2) * spb] = "x"
    else:
        snare[(beats - 1) * spb] = "x"
    return {"kick": "".join(kick), "snare": "".join(snare), "hat": "".join(hat)}


def drum_hits(section: Section, style: Style, grid: Grid) -> list[Hit]:
    """The section's drum part; intros and outros thin out, choruses add crashes and fills."""
    if not style.drums or section.bars == 0:
        return []
    if grid.beats == 4 and grid.steps_per_beat == 4:
        groove = DRUM_PATTERNS.get(style.drums, DRUM_PATTERNS["pop"])
    else:
        groove = _generic_groove(style.drums, grid.beats, grid.steps_per_beat)
    energy = SECTION_ENERGY[section.kind]
    hits: list[Hit] = []
    for b in range(section.bars):
        bar = section.start_bar + b
        for sound, pattern in groove.items():
            thinned = section.kind == "intro" or (
                section.kind == "outro" and b >= section.bars // 2
            )
            if thinned and sound in ("kick", "snare", "clap"):
                continue
            if section.kind == "bridge" and sound == "snare":
                half = len(pattern) // 2  # half-time feel: backbeat only in the second half
                pattern = "." * half + pattern[half:]
            for step, mark in enumerate(pattern):
                if mark != ".":
                    velocity = (LOUD if mark == "x" else SOFT) * energy
                    hits.append(Hit(grid.frame(bar, step), sound, velocity))
        if b == 0 and section.kind in ("chorus", "inst") and section.index > 0:
            hits.append(Hit(grid.frame(bar, 0), "crash", 0.8))
        fill = b == section.bars - 1 and not section.last and section.kind not in ("intro",)
        if fill and section.bars >= 2:
            last_beat = (grid.beats - 1) * grid.steps_per_beat
            for step in range(last_beat, grid.steps, max(1, grid.steps_per_beat // 4)):
                hits.append(Hit(grid.frame(bar, step), "snare", 0.35 + 0.4 * energy))
    return hits


def bass_notes(
    section: Section, style: Style, grid: Grid, chords: list[tuple[int, ...]]
) -> list[Note]:
    """Bass line by style name: eighths, offbeat, walking, roots, octaves, funk, drone."""
    if "bass" not in style.instruments or section.kind == "intro":
        return []
    energy = SECTION_ENERGY[section.kind]
    notes: list[Note] = []
    spb = grid.steps_per_beat
    for b, chord in enumerate(chords):
        bar = section.start_bar + b
        root = nearest_in_range(chord[0], BASS_LOW, BASS_LOW + 12)
        fifth = nearest_in_range(chord[2], BASS_LOW, BASS_LOW + 12)
        third = nearest_in_range(chord[1], BASS_LOW, BASS_LOW + 12)
        plan: list[tuple[float, int, float]] = []  # (step, midi, length in steps)
        portable = ("drone", "walking", "eighths", "offbeat")
        kind = style.bass if grid.beats == 4 or style.bass in portable else "roots"
        if kind == "eighths":
            plan = [(s, root, spb / 2 * 0.9) for s in np.arange(0, grid.steps, spb / 2)]
        elif kind == "offbeat":
            plan = [(s + spb / 2, root, spb / 2 * 0.8) for s in range(0, grid.steps, spb)]
        elif kind == "walking":
            nxt = nearest_in_range(chords[(b + 1) % len(chords)][0], BASS_LOW, BASS_LOW + 12)
            walk = [root, third, fifth, nxt + (1 if nxt < fifth else -1)]
            plan = [(i * spb, walk[i % 4], spb * 0.9) for i in range(grid.beats)]
        elif kind == "octaves":
            plan = [(s, root + 12 * (i % 2), spb / 2 * 0.8)
                    for i, s in enumerate(np.arange(0, grid.steps, spb / 2))]  # fmt: skip
        elif kind == "funk":
            plan = [(0, root, 3), (3, root + 12, 1), (6, root, 2), (10, fifth, 2), (12, root, 3)]
        elif kind == "drone":
            plan = [(0, root, grid.steps)]
        else:  # roots: root on one, fifth half way
            half = (grid.beats // 2 or 1) * spb
            plan = [(0, root, half * 0.95), (half, fifth, (grid.steps - half) * 0.95)]
        for step, midi, length in plan:
            notes.append(Note(grid.frame(bar, float(step)), midi, grid.span(length), 0.8 * energy))
    return notes


def comp_notes(section: Section, style: Style, grid: Grid, chords: list[tuple[int, ...]],
               instrument: str) -> list[Note]:  # fmt: skip
    """Chords for one accompanying instrument, in the rhythm that suits it."""
    energy = SECTION_ENERGY[section.kind]
    notes: list[Note] = []
    spb, steps = grid.steps_per_beat, grid.steps
    for b, chord in enumerate(chords):
        bar = section.start_bar + b
        voiced = voicing(chord)
        if instrument in ("strings", "pad", "organ") and style.drums != "reggae":
            for midi in voiced:
                notes.append(Note(grid.frame(bar, 0), midi, grid.span(steps), 0.5 * energy))
        elif instrument in ("bells", "synth"):
            arp = [*voiced, voiced[0] + 12]
            rate = spb // 2 if section.kind in ("chorus", "inst") else spb
            for i, step in enumerate(range(0, steps, max(1, rate))):
                midi = arp[i % len(arp)] + 12
                notes.append(Note(grid.frame(bar, step), midi, grid.span(rate * 0.9), 0.4 * energy))
        elif instrument == "guitar":
            strum = [0, spb, spb + spb // 2, 3 * spb] if grid.beats == 4 else range(0, steps, spb)
            for step in strum:
                for i, midi in enumerate([voiced[0] - 12, *voiced]):
                    start = grid.frame(bar, step) + i * round(0.008 * grid.sample_rate)
                    notes.append(Note(start, midi, grid.span(spb * 0.9), 0.45 * energy))
        elif style.drums == "reggae" or (instrument == "piano" and style.drums == "four"):
            for beat in range(grid.beats):  # skank / house stabs on the offbeats
                for midi in voiced:
                    start = grid.frame(bar, beat * spb + spb // 2)
                    notes.append(Note(start, midi, grid.span(spb / 3), 0.5 * energy))
        elif section.kind in ("intro", "outro", "bridge") or style.drums in ("ballad", ""):
            arp = [voiced[0] - 12, *voiced, voiced[1] + 12]  # arpeggio in eighths
            for i, step in enumerate(range(0, steps, max(1, spb // 2))):
                notes.append(Note(grid.frame(bar, step), arp[i % len(arp)],
                                  grid.span(spb * 1.5), 0.45 * energy))  # fmt: skip
        else:
            for beat in range(grid.beats):
                for midi in voiced:
                    notes.append(Note(grid.frame(bar, beat * spb), midi, grid.span(spb * 0.8),
                                      (0.5 if beat == 0 else 0.35) * energy))  # fmt: skip
    return notes


def melody_notes(section: Section, style: Style, grid: Grid, chords: list[tuple[int, ...]],
                 motif_seed: int) -> list[Note]:  # fmt: skip
    """A two-bar motif (rhythm and contour) per section kind, fitted to each bar's chord."""
    if section.bars == 0:
        return []
    rng = np.random.default_rng([motif_seed, hash_kind(section.kind)])
    density = {"chorus": 0.55, "inst": 0.6, "verse": 0.35, "bridge": 0.3}.get(section.kind, 0.25)
    motif: list[tuple[int, int, int]] = []  # (bar in motif, step, contour move)
    for mbar in range(2):
        for step in range(0, grid.steps, 2):
            on_beat = step % grid.steps_per_beat == 0
            if step == 0 or rng.random() < (density + (0.2 if on_beat else 0.0)):
                move = 0 if on_beat else int(rng.choice([-2, -1, 1, 2]))
                motif.append((mbar, step, move))
    octave = 5 if section.kind in ("chorus", "inst") else 4
    key = style.key
    degree = 2
    notes: list[Note] = []
    energy = SECTION_ENERGY[section.kind]
    for b, chord in enumerate(chords):
        bar = section.start_bar + b
        events = [(step, move) for mbar, step, move in motif if mbar == b % 2]
        chord_degrees = [d for d in range(-3, 10) if (key.tonic + key.steps[d % 7]) % 12 in chord]
        for i, (step, move) in enumerate(events):
            if move == 0:
                degree = min(chord_degrees, key=lambda d, cur=degree: (abs(d - cur), d))
            else:
                degree = int(np.clip(degree + move, -2, 9))
            end = events[i + 1][0] if i + 1 < len(events) else grid.steps
            length = grid.span((end - step) * 0.9)
            midi = key.degree_midi(degree, octave)
            notes.append(Note(grid.frame(bar, step), midi, length, 0.55 * energy))
    return notes


def hash_kind(kind: str) -> int:
    """A stable small integer per section kind (str hash is salted per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(kind))
