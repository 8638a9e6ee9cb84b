"""Lyrics: LRC parsing, automatic timing for plain lyrics, English g2p, frame placement.

Spec §1.2 and §1.3. DiffRhythm pins each lyric line's first phone to the frame of its timestamp
("sentence-level alignment") and writes one phone id per latent frame from there; id 0 fills the
rest. Upstream slices timestamps by fixed columns (mis-reading ``[mm:ss.xxx]``) and crashes on
empty or punctuation-only lines; here a regex parses ``[mm:ss]``, ``[mm:ss.xx]`` and
``[mm:ss.xxx]``, and every unusable input raises ``LyricsError`` with the line it is about.

ACE-Step clients send plain lyrics with ``[verse]``-style tags and no timestamps;
``auto_timestamps`` spreads such lines over the song from its duration, tempo and structure.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100
HOP = 2048
PUNCTUATION = ';:,.!?¡¿—…"«»“”'

_STAMP = re.compile(r"\[(\d{1,3}):(\d{1,2})(?:[.:](\d{1,3}))?\]")
_LEADING_STAMPS = re.compile(r"^\s*((?:\[\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?\]\s*)+)(.*)$")
_TAG = re.compile(r"^\s*\[([^\]]*)\]\s*$")  # a whole line in brackets: [verse], [ti:Title]
_PHONE_PIECES = re.compile(rf"[{re.escape(PUNCTUATION)}]|[^\s{re.escape(PUNCTUATION)}]+")
_VOWELS = re.compile(r"[aeiouy]+")

INSTRUMENTAL_SECTIONS = ("intro", "outro", "inst", "solo", "interlude", "break", "drop")
DEFAULT_BPM = 120
PHONE_MAP = {"ɐ": "ɚ", "x": "k"}  # espeak phones the vocabulary spells differently


class LyricsError(ValueError):
    """The lyrics cannot be turned into model input; the message names the offending line."""


@dataclass(frozen=True)
class LrcLine:
    """One timed lyric line; empty text is a pure time marker (for example the song's end)."""

    time: float  # seconds
    text: str


def seconds_to_frame(seconds: float) -> int:
    """Upstream's frame of a time: ``int(t * 44100 / 2048)``."""
    return int(seconds * SAMPLE_RATE / HOP)


def has_timestamps(lyrics: str) -> bool:
    """Whether any line starts with an LRC timestamp."""
    return any(_LEADING_STAMPS.match(line) for line in lyrics.splitlines())


def _stamp_seconds(match: re.Match[str]) -> float:
    minutes, seconds, frac = match.group(1), match.group(2), match.group(3)
    value = int(minutes) * 60 + int(seconds)
    if frac:
        value += int(frac) / 10 ** len(frac)
    return float(value)


def parse_lrc(lyrics: str) -> list[LrcLine]:
    """Timed lines sorted by time. Metadata (``[ti:..]``) and untimed lines are skipped.

    A line may carry several timestamps (``[00:10.00][01:10.00]chorus``); a text that is only a
    section tag (``[00:10.00][verse]``) becomes an empty marker line.
    """
    lines: list[LrcLine] = []
    for raw in lyrics.splitlines():
        match = _LEADING_STAMPS.match(raw)
        if not match:
            continue
        text = match.group(2).strip()
        if _TAG.match(text):
            text = ""
        for stamp in _STAMP.finditer(match.group(1)):
            lines.append(LrcLine(_stamp_seconds(stamp), text))
    lines.sort(key=lambda line: line.time)
    return lines


def count_syllables(text: str) -> int:
    """A rough syllable count (vowel groups per word, at least one per word) for pacing."""
    total = 0
    for word in re.findall(r"[^\W\d_]+|\d+", text.lower()):
        if word.isdigit():
            total += 2 * len(word)
            continue
        total += max(1, len(_VOWELS.findall(word)))
    return total


def auto_timestamps(lyrics: str, duration: float, bpm: int | None = None) -> list[LrcLine]:
    """Timestamps for plain lyrics, from the song's duration, tempo and section tags.

    Pacing: about two syllables per beat, each line rounded up to half a bar (at least one bar);
    a two-bar lead-in (four bars for an explicit instrumental intro), one bar between sections,
    four bars for each instrumental section. If the result runs past the song it is compressed
    uniformly to fit. A final empty line marks the end (the base model drops the last line).
    """
    beat = 60.0 / (bpm or DEFAULT_BPM)
    bar = 4 * beat
    timed: list[tuple[float, str]] = []
    t = 0.0
    first = True
    pending_gap = 2 * bar
    for raw in lyrics.splitlines():
        line = raw.strip()
        if not line:
            continue
        tag = _TAG.match(line)
        if tag:
            name = tag.group(1).strip().lower()
            if ":" in name:  # LRC metadata such as [ti:Title]
                continue
            if name.startswith(INSTRUMENTAL_SECTIONS):
                # an explicit intro replaces the default lead-in; later ones add up
                pending_gap = 4 * bar if first else pending_gap + 4 * bar
            elif not first:
                pending_gap = max(pending_gap, bar)
            continue
        t += pending_gap
        pending_gap = 0.0
        first = False
        timed.append((t, line))
        beats = max(4, 2 * math.ceil(count_syllables(line) / 4))
        t += beats * beat
    if not timed:
        return []
    end = t + bar
    available = max(duration - 1.0, 1.0)
    factor = min(1.0, available / end)
    if factor < 1.0:
        log.info("compressing auto-timed lyrics by %.2f to fit %.1f s", factor, duration)
    return [LrcLine(round(s * factor, 2), text) for s, text in timed] + [
        LrcLine(round(end * factor, 2), "")
    ]


def timed_lines(lyrics: str, duration: float, bpm: int | None = None) -> list[LrcLine]:
    """LRC lines as given, or automatic timing when the lyrics carry no timestamps."""
    if not lyrics.strip():
        return []
    if has_timestamps(lyrics):
        return parse_lrc(lyrics)
    return auto_timestamps(lyrics, duration, bpm)


# ---------------------------------------------------------------------------- g2p


class G2P(Protocol):
    """Text -> vocabulary ids 1..363 (0 is the filler); "," and "." ids via ``comma``/``period``."""

    comma: int
    period: int

    def __call__(self, text: str) -> list[int]: ...


def load_vocab(path: Path) -> dict[str, int]:
    """``vocab.json`` (``{"vocab": {phone: id}}``) -> phone -> model id (file id + 1)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        vocab = raw["vocab"] if isinstance(raw, dict) and "vocab" in raw else raw
        return {str(k): int(v) + 1 for k, v in vocab.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LyricsError(f"cannot read the phone vocabulary {path}: {exc}") from exc


def _check_script(text: str) -> None:
    for ch in text:
        if ch.isalpha() and not unicodedata.name(ch, "").startswith("LATIN"):
            kind = "Chinese" if "\u4e00" <= ch <= "\u9fff" else "non-Latin"
            raise LyricsError(
                f"{kind} characters are not supported (only English lyrics): {text!r}"
            )


def _normalise(text: str) -> str:
    text = text.replace(";", ",").replace(":", ",").replace("-", " ")
    text = re.sub(r"[()\[\]<>{}\"«»“”*#]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


class EspeakG2P:
    """English phones from phonemizer/espeak-ng, mapped into the DiffRhythm vocabulary.

    Phones missing from the vocabulary are dropped (as upstream); adjacent phones whose
    concatenation is a vocabulary entry (``t`` ``ɹ`` -> ``tɹ``) are merged.
    """

    def __init__(self, vocab: dict[str, int], language: str = "en-us") -> None:
        self.vocab = vocab
        self.comma = vocab.get(",", 1)
        self.period = vocab.get(".", 2)
        self.language = language
        self._backend: object | None = None

    @classmethod
    def from_file(cls, path: Path, language: str = "en-us") -> EspeakG2P:
        return cls(load_vocab(path), language)

    def _phonemize(self, text: str) -> str:
        from phonemizer.backend import EspeakBackend
        from phonemizer.separator import Separator

        if self._backend is None:
            try:
                self._backend = EspeakBackend(
                    self.language,
                    preserve_punctuation=True,
                    punctuation_marks=PUNCTUATION,
                    with_stress=False,
                    language_switch="remove-flags",
                    words_mismatch="ignore",
                )
            except RuntimeError as exc:  # espeak-ng missing
                raise LyricsError(f"espeak-ng is not available for g2p: {exc}") from exc
        sep = Separator(phone="|", word="|_|", syllable="")
        return self._backend.phonemize([text], separator=sep, strip=True)[0]  # type: ignore[attr-defined]

    def phones(self, text: str) -> list[str]:
        """The phone strings of a line, after mapping and merging, before the vocab lookup."""
        _check_script(text)
        text = _normalise(text)
        if not any(ch.isalnum() for ch in text):
            return []
        pieces = []
        for chunk in self._phonemize(text).split("|"):
            pieces.extend(_PHONE_PIECES.findall(chunk))
        pieces = [PHONE_MAP.get(p, p) for p in pieces]
        merged: list[str] = []
        for p in pieces:
            if merged and merged[-1] + p in self.vocab and p not in PUNCTUATION:
                merged[-1] += p
            else:
                merged.append(p)
        while merged and merged[-1] == "_":
            merged.pop()
        return merged

    def __call__(self, text: str) -> list[int]:
        return [self.vocab[p] for p in self.phones(text) if p in self.vocab]


# ---------------------------------------------------------------------------- placement


@dataclass(frozen=True)
class PlacedLyrics:
    """The per-frame token row and what happened to the lines."""

    tokens: torch.Tensor  # [end_frame] long
    placed: int
    dropped: int


def place_lyrics(
    lines: Sequence[LrcLine],
    g2p: G2P,
    *,
    end_frame: int,
    max_secs: float,
    drop_last: bool,
) -> PlacedLyrics:
    """One token per frame from each line's start frame (never before the previous line's end).

    ``drop_last`` is the base model's training convention: the last line inside the window is
    the song's end marker and is not sung. Inside a line "." becomes "," and one "." ends it.
    """
    inside = [line for line in lines if line.time < max_secs]
    if drop_last and inside:
        if inside[-1].text:
            log.info("base model: the last line %r is the end marker, not sung", inside[-1].text)
        inside = inside[:-1]
    tokens = torch.zeros(end_frame, dtype=torch.long)
    cursor = placed = dropped = 0
    for number, line in enumerate(inside, start=1):
        if not line.text:
            continue
        try:
            ids = g2p(line.text)
        except LyricsError:
            raise
        except Exception as exc:  # phonemizer/espeak failures: name the line
            raise LyricsError(f"g2p failed on line {number} {line.text!r}: {exc}") from exc
        if not ids:
            log.debug("line %r has no phones; skipped", line.text)
            continue
        ids = [g2p.comma if i == g2p.period else i for i in ids] + [g2p.period]
        start = max(seconds_to_frame(line.time), cursor)
        if start >= end_frame:
            dropped += 1
            continue
        n = min(len(ids), end_frame - start)
        tokens[start : start + n] = torch.tensor(ids[:n], dtype=torch.long)
        cursor = start + n
        placed += 1
    if dropped:
        log.warning("%d lyric lines did not fit in %d frames and were dropped", dropped, end_frame)
    return PlacedLyrics(tokens, placed, dropped)
