"""One song from a Style and a section plan: notes per section, rendered, mixed, mastered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.synth.arrangement import Section, SectionPlan, layout
from models.synth.instruments import SAMPLE_RATE, VOICES, NoteCache, drive, drum_kit
from models.synth.mix import Mixer, master
from models.synth.patterns import (
    Grid,
    Hit,
    Note,
    bass_notes,
    chords_for,
    comp_notes,
    drum_hits,
    melody_notes,
)
from models.synth.style import Style
from models.synth.vocal import Espeak, fit_line, speaking_rate

END_FADE_SECONDS = 0.05  # avoid a click when the last note is cut by the duration
OUTRO_FADE_BARS = 2  # an outro that ends the song fades over its last bars
MELODY_KINDS = ("chorus", "inst")  # the lead always plays here; elsewhere only without lyrics


@dataclass(frozen=True)
class Vocal:
    """How to sing lyric lines: the espeak wrapper and the espeak voice name."""

    espeak: Espeak
    voice: str


def _play(mixer: Mixer, part: str, notes: list[Note], voice: str, cache: NoteCache) -> None:
    for note in notes:
        wave = cache.note(VOICES[voice], note.midi, note.length)
        mixer.add(part, note.start, wave, note.velocity)


def _hits(mixer: Mixer, hits: list[Hit], kit: dict[str, np.ndarray]) -> None:
    for hit in hits:
        mixer.add(hit.sound, hit.start, kit[hit.sound], hit.velocity)


def section_bounds(section: Section, grid: Grid) -> tuple[int, int]:
    """First frame of the section and first frame after it."""
    return grid.frame(section.start_bar, 0), grid.frame(section.start_bar + section.bars, 0)


def _line_slots(section: Section, grid: Grid) -> list[tuple[str, int, int]]:
    """(line, start frame, slot frames): lines share the section's bars, each starts on a beat."""
    start, end = section_bounds(section, grid)
    if not section.lines or end <= start:
        return []
    beat = grid.step_frames * grid.steps_per_beat
    slot = (end - start) / len(section.lines)
    return [
        (line, start + int(np.floor(i * slot / beat) * beat), round(slot))
        for i, line in enumerate(section.lines)
    ]


def _sing(mixer: Mixer, slots: list[tuple[str, int, int]], vocal: Vocal) -> None:
    for line, start, slot in slots:
        speech = vocal.espeak.speak(line, vocal.voice, speaking_rate(line, slot / SAMPLE_RATE))
        if speech is not None:
            mixer.add("vocal", start, fit_line(speech, slot, SAMPLE_RATE), 1.0)


def render_song(
    style: Style,
    plans: list[SectionPlan],
    frames: int,
    rng: np.random.Generator,
    vocal: Vocal | None,
    on_section: Callable[[], None],
    gain_curve: np.ndarray | None = None,
) -> np.ndarray:
    """Stereo float32 (2, frames); calls ``on_section`` once per planned section."""
    grid = Grid(style.bpm, style.meter.beats, style.meter.steps_per_beat, style.swing,
                SAMPLE_RATE)  # fmt: skip
    sections = layout(plans, frames / grid.bar_frames)
    kit = drum_kit(rng, style.key.tonic)
    motif_seed = int(rng.integers(2**31))
    cache = NoteCache()
    mixer = Mixer(frames, separate=("guitar",) if style.distortion else ())
    melodic = [i for i in style.instruments if i not in ("bass", "drums")]
    compers = [i for i in melodic if i != style.lead] or [style.lead]
    sung = any(s.lines for s in sections) and vocal is not None
    slots = {s.index: _line_slots(s, grid) for s in sections}
    if vocal is not None:  # espeak runs are processes: start them all at once
        vocal.espeak.prefetch(
            [(line, vocal.voice, speaking_rate(line, slot / SAMPLE_RATE))
             for lines in slots.values() for line, _, slot in lines]
        )  # fmt: skip
    for section in sections:
        if section.bars:
            chords = chords_for(section, style)
            _hits(mixer, drum_hits(section, style, grid), kit)
            _play(mixer, "bass", bass_notes(section, style, grid, chords), "bass", cache)
            for instrument in compers:
                notes = comp_notes(section, style, grid, chords, instrument)
                _play(mixer, instrument, notes, instrument, cache)
            wants_melody = section.kind in MELODY_KINDS or (
                not sung and section.kind not in ("intro", "outro")
            )
            if wants_melody:
                notes = melody_notes(section, style, grid, chords, motif_seed)
                _play(mixer, "lead", notes, style.lead, cache)
            if vocal is not None and slots[section.index]:
                _sing(mixer, slots[section.index], vocal)
        on_section()

    if "guitar" in mixer.separate:
        mixer.separate["guitar"] = drive(mixer.separate["guitar"], style.distortion)
    stereo = mixer.stereo()
    last = sections[-1]
    if last.kind == "outro" and last.bars:
        fade_start = grid.frame(last.start_bar + max(0, last.bars - OUTRO_FADE_BARS), 0)
    else:
        fade_start = frames - round(END_FADE_SECONDS * SAMPLE_RATE)
    fade_start = int(np.clip(fade_start, 0, frames))
    if fade_start < frames:
        stereo[:, fade_start:] *= np.linspace(1.0, 0.0, frames - fade_start, dtype=np.float32)
    if gain_curve is not None:
        stereo *= gain_curve.astype(np.float32)
    return master(stereo)
