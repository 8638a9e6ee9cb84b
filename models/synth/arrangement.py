"""Song form: sections from the lyrics' structure tags, laid out in whole bars over the duration.

The plan (which sections, which lyric lines) depends only on the lyrics and the duration, never
on the tempo, so ``SynthEngine.total_steps`` can count sections before anything is rendered.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

SECTION_KINDS = ("intro", "verse", "prechorus", "chorus", "bridge", "inst", "outro")
TAG_KINDS: dict[str, str] = {
    "intro": "intro", "verse": "verse", "prechorus": "prechorus", "pre-chorus": "prechorus",
    "chorus": "chorus", "hook": "chorus", "refrain": "chorus", "bridge": "bridge",
    "inst": "inst", "instrumental": "inst", "solo": "inst", "interlude": "inst", "break": "inst",
    "drop": "chorus", "outro": "outro", "ending": "outro", "end": "outro",
}  # fmt: skip
# Relative length of each kind when sharing out the duration (intro/outro are half sections).
SECTION_WEIGHT: dict[str, float] = {"intro": 0.5, "outro": 0.5}
DEFAULT_SECTION_SECONDS = 10.0  # untagged songs get about one section per this many seconds
MAX_DEFAULT_SECTIONS = 12
DEFAULT_MIDDLE = ("verse", "chorus", "verse", "chorus", "bridge", "chorus", "inst", "chorus")

_TAG = re.compile(r"^\[([^\]]*)\]\s*(.*)$")
_TIMESTAMP = re.compile(r"^\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?$")  # LRC "[00:12.34]" prefixes


@dataclass(frozen=True)
class SectionPlan:
    """One section before layout: its kind and the lyric lines sung in it."""

    kind: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A planned section placed on the bar grid: bars [start_bar, start_bar + bars)."""

    kind: str
    lines: tuple[str, ...]
    start_bar: int
    bars: int
    index: int  # position in the song
    last: bool


def tag_kind(tag: str) -> str:
    """'[Verse 2]' -> 'verse'; unknown tags count as verses (they usually hold lyrics)."""
    word = re.sub(r"[\d\s_]+", " ", tag.lower()).strip()
    if word in TAG_KINDS:
        return TAG_KINDS[word]
    first = word.split(" ")[0] if word else ""
    return TAG_KINDS.get(first, TAG_KINDS.get(word.replace(" ", ""), "verse"))


def parse_lyrics(lyrics: str) -> tuple[list[SectionPlan], bool]:
    """Split lyrics into sections at structure tags; returns (sections, whether tags were seen)."""
    sections: list[tuple[str, list[str]]] = []
    tagged = False
    for raw in (lyrics or "").splitlines():
        line = raw.strip()
        match = _TAG.match(line)
        while match and _TIMESTAMP.match(match.group(1).strip()):
            line = match.group(2).strip()  # an LRC timestamp, not a structure tag
            match = _TAG.match(line)
        if match:
            tagged = True
            sections.append((tag_kind(match.group(1)), []))
            line = match.group(2).strip()
        if not line:
            continue
        if not sections:
            sections.append(("verse", []))
        sections[-1][1].append(line)
    return [SectionPlan(kind, tuple(lines)) for kind, lines in sections], tagged


def default_form(duration: float) -> list[str]:
    """Intro/verse/chorus/.../outro sized to the duration when the lyrics carry no tags."""
    n = max(1, min(MAX_DEFAULT_SECTIONS, round(duration / DEFAULT_SECTION_SECONDS)))
    if n == 1:
        return ["verse"]
    if n == 2:
        return ["verse", "chorus"]
    if n == 3:
        return ["intro", "verse", "chorus"]
    middle = [DEFAULT_MIDDLE[i % len(DEFAULT_MIDDLE)] for i in range(n - 2)]
    return ["intro", *middle, "outro"]


def plan_sections(lyrics: str, duration: float) -> list[SectionPlan]:
    """The song's sections in order; untagged lyric lines are shared among the sung sections."""
    parsed, tagged = parse_lyrics(lyrics)
    if tagged:
        return parsed
    kinds = default_form(duration)
    lines = [line for section in parsed for line in section.lines]
    sung = [i for i, kind in enumerate(kinds) if kind in ("verse", "chorus", "bridge")]
    if not sung:
        sung = list(range(len(kinds)))
    buckets: list[list[str]] = [[] for _ in kinds]
    per = math.ceil(len(lines) / len(sung)) if lines else 0
    for n, line in enumerate(lines):
        buckets[sung[min(n // per, len(sung) - 1)]].append(line)
    return [SectionPlan(kind, tuple(b)) for kind, b in zip(kinds, buckets, strict=True)]


def layout(plans: list[SectionPlan], total_bars: float) -> list[Section]:
    """Share ``total_bars`` (may be fractional) among sections by weight, in whole bars."""
    weights = [SECTION_WEIGHT.get(p.kind, 1.0) for p in plans]
    total_weight = sum(weights)
    bars_needed = max(1, math.ceil(total_bars - 1e-9))
    bounds = [0]
    acc = 0.0
    for w in weights[:-1]:
        acc += w
        bounds.append(min(bars_needed, round(acc / total_weight * total_bars)))
    bounds.append(bars_needed)
    return [
        Section(p.kind, p.lines, bounds[i], bounds[i + 1] - bounds[i], i, i == len(plans) - 1)
        for i, p in enumerate(plans)
    ]
