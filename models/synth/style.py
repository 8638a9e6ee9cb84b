"""Caption words -> a Style: tempo, key, meter, instruments and groove.

Explicit spec fields (bpm, key_scale, time_signature) always win; caption words narrow the
choices (a genre gives a tempo range and a band, mood words pick the mode and push the tempo);
the seed picks whatever is still open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from models.synth.theory import Key, Meter, parse_key, parse_time_signature


@dataclass(frozen=True)
class Genre:
    """Defaults one genre word brings: tempo range (bpm), band, grooves, mode bias."""

    bpm: tuple[int, int]
    instruments: tuple[str, ...]
    drums: str  # drum pattern name in patterns.DRUM_PATTERNS; "" = no drums
    bass: str  # bass pattern name in patterns.bass_line
    minor_bias: float = 0.5  # probability of a minor key when no mood word decides
    swing: float = 0.0  # 0 = straight 16ths, 1 = full triplet swing
    beats: int = 4
    jazz_chords: bool = False
    distortion: float = 0.0  # guitar drive, 0 = clean


GENRES: dict[str, Genre] = {
    "rock": Genre((110, 140), ("guitar", "bass", "drums", "organ"), "rock", "eighths", 0.4,
                  distortion=0.6),
    "metal": Genre((140, 175), ("guitar", "bass", "drums"), "metal", "eighths", 0.9,
                   distortion=1.0),
    "punk": Genre((160, 190), ("guitar", "bass", "drums"), "rock", "eighths", 0.4,
                  distortion=0.8),
    "jazz": Genre((95, 140), ("piano", "bass", "drums"), "jazz", "walking", 0.4, swing=0.6,
                  jazz_chords=True),
    "blues": Genre((70, 100), ("guitar", "piano", "bass", "drums"), "jazz", "walking", 0.3,
                   swing=0.6, jazz_chords=True),
    "ballad": Genre((60, 78), ("piano", "strings", "bass", "drums"), "ballad", "roots", 0.5),
    "edm": Genre((124, 130), ("synth", "pad", "bass", "drums"), "four", "offbeat", 0.5),
    "techno": Genre((125, 135), ("synth", "bass", "drums"), "four", "offbeat", 0.8),
    "house": Genre((120, 126), ("piano", "synth", "bass", "drums"), "four", "offbeat", 0.4),
    "trance": Genre((132, 140), ("synth", "pad", "bass", "drums"), "four", "offbeat", 0.7),
    "disco": Genre((112, 124), ("strings", "guitar", "bass", "drums"), "four", "octaves", 0.2),
    "hiphop": Genre((82, 96), ("piano", "bass", "drums"), "hiphop", "roots", 0.7),
    "trap": Genre((130, 150), ("synth", "bells", "bass", "drums"), "hiphop", "roots", 0.9),
    "lofi": Genre((70, 88), ("piano", "bass", "drums"), "hiphop", "roots", 0.5, swing=0.4,
                  jazz_chords=True),
    "waltz": Genre((84, 104), ("strings", "piano", "bass"), "waltz", "roots", 0.4, beats=3),
    "ambient": Genre((60, 80), ("pad", "bells", "strings"), "", "drone", 0.5),
    "pop": Genre((100, 124), ("piano", "synth", "bass", "drums"), "pop", "eighths", 0.3),
    "funk": Genre((96, 112), ("guitar", "organ", "bass", "drums"), "funk", "funk", 0.4),
    "reggae": Genre((70, 90), ("organ", "guitar", "bass", "drums"), "reggae", "roots", 0.4),
    "country": Genre((96, 120), ("guitar", "piano", "bass", "drums"), "pop", "roots", 0.2),
    "folk": Genre((88, 112), ("guitar", "strings", "bass"), "ballad", "roots", 0.4),
    "classical": Genre((70, 110), ("strings", "piano"), "", "roots", 0.5),
    "cinematic": Genre((70, 96), ("strings", "pad", "bells", "bass", "drums"), "ballad",
                       "drone", 0.7),
    "soul": Genre((80, 100), ("organ", "piano", "bass", "drums"), "pop", "roots", 0.4,
                  swing=0.3, jazz_chords=True),
}  # fmt: skip
GENRE_ALIASES: dict[str, str] = {
    "hip hop": "hiphop", "hip-hop": "hiphop", "rap": "hiphop", "lo-fi": "lofi", "lo fi": "lofi",
    "electronic": "edm", "dance": "edm", "heavy metal": "metal", "r&b": "soul", "rnb": "soul",
    "orchestral": "cinematic", "epic": "cinematic", "chillhop": "lofi", "dubstep": "edm",
    "swing": "jazz", "bossa": "jazz",
}  # fmt: skip
DEFAULT_GENRE = Genre((90, 128), ("piano", "pad", "bass", "drums"), "pop", "eighths", 0.5)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MINOR_WORDS = _words(
    "sad dark melancholic melancholy somber sombre gloomy moody minor tragic lonely haunting "
    "mysterious tense sorrowful heartbroken"
)
MAJOR_WORDS = _words(
    "happy bright uplifting joyful cheerful sunny major hopeful triumphant playful fun warm "
    "romantic"
)
FAST_WORDS = _words("energetic fast upbeat intense aggressive driving powerful hype")
SLOW_WORDS = _words(
    "calm slow chill relaxed relaxing peaceful gentle soft dreamy mellow sleepy quiet"
)
FAST_TEMPO_FACTOR = 1.15
SLOW_TEMPO_FACTOR = 0.8
MIN_BPM, MAX_BPM = 40, 220

INSTRUMENT_WORDS: dict[str, str] = {
    "piano": "piano", "keys": "piano", "rhodes": "piano", "guitar": "guitar",
    "guitars": "guitar", "strings": "strings", "violin": "strings", "violins": "strings",
    "cello": "strings", "orchestra": "strings", "synth": "synth", "synths": "synth",
    "synthesizer": "synth", "lead": "synth", "pad": "pad", "pads": "pad", "bass": "bass",
    "drums": "drums", "drum": "drums", "beat": "drums", "beats": "drums", "percussion": "drums",
    "organ": "organ", "bells": "bells", "bell": "bells", "glockenspiel": "bells",
    "chimes": "bells", "celesta": "bells", "music box": "bells",
}  # fmt: skip


@dataclass(frozen=True)
class Style:
    """Everything about one track that the caption, fixed fields and seed decide."""

    bpm: int
    key: Key
    meter: Meter
    instruments: tuple[str, ...]
    lead: str  # instrument playing the melody
    drums: str
    bass: str
    swing: float
    jazz_chords: bool
    distortion: float
    genres: tuple[str, ...]
    progression_index: int  # which progression of the mode's list (seed-chosen)


def caption_words(caption: str) -> str:
    """Lower-case caption with punctuation turned into spaces, padded for phrase matching."""
    return " " + re.sub(r"[^a-z0-9&#+\-]+", " ", caption.lower()) + " "


def find_genres(caption: str) -> tuple[str, ...]:
    """Genre names mentioned in the caption, in order of first appearance."""
    text = caption_words(caption)
    hits: list[tuple[int, str]] = []
    for word, genre in [*((g, g) for g in GENRES), *GENRE_ALIASES.items()]:
        pos = text.find(f" {word} ")
        if pos >= 0:
            hits.append((pos, genre))
    seen: list[str] = []
    for _, genre in sorted(hits):
        if genre not in seen:
            seen.append(genre)
    return tuple(seen)


def find_instruments(caption: str) -> tuple[str, ...]:
    """Instrument voices named in the caption, in order of first appearance."""
    text = caption_words(caption)
    found = sorted(
        (text.find(f" {w} "), v) for w, v in INSTRUMENT_WORDS.items() if f" {w} " in text
    )
    names: list[str] = []
    for _, voice in found:
        if voice not in names:
            names.append(voice)
    return tuple(names)


def choose_style(
    caption: str,
    bpm: int | None,
    key_scale: str,
    time_signature: str,
    rng: np.random.Generator,
) -> Style:
    """Resolve the track's style; the draw order from ``rng`` is fixed so seeds are stable."""
    genres = find_genres(caption)
    genre = GENRES[genres[0]] if genres else DEFAULT_GENRE
    words = set(caption_words(caption).split())
    # Draw every random choice up front, whether used or not, so one fixed field never shifts
    # the others' draws.
    u_tempo, u_mode, u_tonic, u_prog, u_lead = rng.random(5)

    low, high = genre.bpm
    tempo = low + u_tempo * (high - low)
    if words & FAST_WORDS:
        tempo *= FAST_TEMPO_FACTOR
    if words & SLOW_WORDS:
        tempo *= SLOW_TEMPO_FACTOR
    chosen_bpm = int(np.clip(bpm if bpm else round(tempo), MIN_BPM, MAX_BPM))

    key = parse_key(key_scale)
    if key is None:
        minor_bias = genre.minor_bias
        if words & MINOR_WORDS:
            minor_bias = 1.0
        elif words & MAJOR_WORDS:
            minor_bias = 0.0
        key = Key(tonic=int(u_tonic * 12) % 12, minor=bool(u_mode < minor_bias))

    meter = parse_time_signature(time_signature) or Meter(beats=genre.beats, steps_per_beat=4)

    named = find_instruments(caption)
    if named and "solo" not in words:
        rhythm = tuple(i for i in genre.instruments if i in ("bass", "drums") and i not in named)
        instruments = (*named, *rhythm)
    else:
        instruments = named or genre.instruments
    melodic = [i for i in instruments if i not in ("bass", "drums")]
    if not melodic:
        melodic = ["piano"]
        instruments = (*instruments, "piano")
    lead = melodic[0] if named or u_lead < 0.5 else melodic[-1]
    drums = (genre.drums or "pop") if "drums" in instruments else ""
    return Style(
        bpm=chosen_bpm,
        key=key,
        meter=meter,
        instruments=tuple(instruments),
        lead=lead,
        drums=drums,
        bass=genre.bass,
        swing=genre.swing,
        jazz_chords=genre.jazz_chords,
        distortion=genre.distortion,
        genres=genres,
        progression_index=int(u_prog * 1000),
    )
