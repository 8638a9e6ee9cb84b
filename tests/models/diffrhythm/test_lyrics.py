"""LRC parsing, automatic timing, English g2p through espeak-ng, and frame placement."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.diffrhythm.lyrics import (
    EspeakG2P,
    LrcLine,
    LyricsError,
    auto_timestamps,
    has_timestamps,
    load_vocab,
    parse_lrc,
    place_lyrics,
    seconds_to_frame,
    timed_lines,
)
from models.diffrhythm.weights import VOCAB_FILE


class FakeG2P:
    """One id per letter (a=3, b=4, ...), "." = 2, "," = 1; deterministic and espeak-free."""

    comma, period = 1, 2

    def __call__(self, text: str) -> list[int]:
        out = []
        for ch in text.lower():
            if ch == ".":
                out.append(self.period)
            elif ch.isalpha():
                out.append(3 + ord(ch) - ord("a"))
        return out


@pytest.fixture(scope="module")
def g2p(tiny_dir: Path) -> EspeakG2P:
    return EspeakG2P.from_file(tiny_dir / VOCAB_FILE)


def test_parse_lrc_formats() -> None:
    text = "\n".join(
        [
            "[ti:Title]",
            "[ar:Someone]",
            "[00:01]one",
            "[00:02.50]two",
            "[00:03.125]three",  # upstream mis-slices three decimals
            "[01:04.5] four ",
            "untimed line",
            "[00:10.00][00:20.00]twice",
            "[00:30.00][verse]",
            "[00:40.00]",
        ]
    )
    lines = parse_lrc(text)
    assert lines == [
        LrcLine(1.0, "one"),
        LrcLine(2.5, "two"),
        LrcLine(3.125, "three"),
        LrcLine(10.0, "twice"),
        LrcLine(20.0, "twice"),
        LrcLine(30.0, ""),
        LrcLine(40.0, ""),
        LrcLine(64.5, "four"),
    ]
    assert has_timestamps(text) and not has_timestamps("[verse]\nhello")


def test_seconds_to_frame_matches_upstream() -> None:
    assert seconds_to_frame(95.108) == 2047
    assert seconds_to_frame(2048 * 2048 / 44100) == 2048
    assert seconds_to_frame(1.0) == 21


def test_placement_pins_line_starts_and_never_overlaps() -> None:
    lines = [LrcLine(0.0, "ab."), LrcLine(0.05, "cd"), LrcLine(2.0, "e")]
    placed = place_lyrics(lines, FakeG2P(), end_frame=100, max_secs=95, drop_last=False)
    tokens = placed.tokens.tolist()
    # line 1: a b "," (its "." became ",") then the end-of-line "."
    assert tokens[0:4] == [3, 4, 1, 2]
    # line 2 starts at frame 1 by its time, but after line 1 ends (frame 4)
    assert tokens[4:7] == [5, 6, 2]
    assert tokens[7:43] == [0] * 36
    assert tokens[43:45] == [7, 2]  # int(2.0 * 44100 / 2048) = 43
    assert placed.placed == 3 and placed.dropped == 0


def test_placement_truncates_drops_and_skips() -> None:
    g2p = FakeG2P()
    lines = [LrcLine(0.0, "abcdef"), LrcLine(0.1, "..."), LrcLine(0.2, "gh"), LrcLine(9.0, "late")]
    placed = place_lyrics(lines, g2p, end_frame=8, max_secs=95, drop_last=False)
    # "..." has only punctuation phones: placed as ",,," + "."
    assert placed.tokens.tolist() == [3, 4, 5, 6, 7, 8, 2, 1]
    assert placed.dropped == 2  # "gh" and "late" found no room
    base = place_lyrics(lines, g2p, end_frame=100, max_secs=5.0, drop_last=True)
    # "late" is past max_secs; then the last line inside the window ("gh") is the end marker
    assert base.placed == 2 and 9 not in base.tokens.tolist()


def test_empty_lines_are_markers_not_crashes() -> None:
    lines = [LrcLine(0.0, ""), LrcLine(1.0, "a"), LrcLine(2.0, "")]
    placed = place_lyrics(lines, FakeG2P(), end_frame=64, max_secs=95, drop_last=True)
    assert placed.placed == 1  # the closing empty line was the dropped end marker


def test_auto_timestamps_follow_structure_and_fit() -> None:
    lyrics = (
        "[intro]\n[verse]\nHello there my friend\nHow are you today\n\n"
        "[chorus]\nSing along\n[outro]"
    )
    lines = auto_timestamps(lyrics, duration=60.0, bpm=120)
    texts = [line.text for line in lines]
    assert texts == ["Hello there my friend", "How are you today", "Sing along", ""]
    times = [line.time for line in lines]
    assert times == sorted(times)
    assert times[0] == 8.0  # four bars of instrumental intro at 120 bpm
    assert times[2] - times[1] > 2.0  # a bar between sections
    assert times[-1] <= 59.0
    squeezed = auto_timestamps(lyrics + "\nmore words here\n" * 30, duration=20.0, bpm=120)
    assert squeezed[-1].time <= 19.0 and len(squeezed) == 34


def test_timed_lines_chooses_lrc_or_auto() -> None:
    assert timed_lines("", 30.0) == []
    assert timed_lines("[00:05.00]hi", 30.0) == [LrcLine(5.0, "hi")]
    assert [line.text for line in timed_lines("hi\nthere", 30.0)] == ["hi", "there", ""]


def test_espeak_english_g2p(g2p: EspeakG2P) -> None:
    phones = g2p.phones("Trees, and a test.")
    assert phones[0] == "tɹ"  # merged, as the vocabulary spells it
    assert "," in phones and phones[-1] == "."
    assert "ɐ" not in phones  # mapped to ɚ
    ids = g2p("Trees, and a test.")
    assert all(1 <= i <= 363 for i in ids)
    assert ids[-1] == g2p.period == 2 and g2p.comma == 1
    assert g2p("42") != []  # digits are read as numbers
    assert g2p("!!! ...") == []


def test_unsupported_script_raises_a_clear_error(g2p: EspeakG2P) -> None:
    with pytest.raises(LyricsError, match="Chinese characters are not supported"):
        g2p("你好 world")
    lines = [LrcLine(0.0, "hello"), LrcLine(2.0, "Привет")]
    with pytest.raises(LyricsError, match="non-Latin"):
        place_lyrics(lines, g2p, end_frame=100, max_secs=95, drop_last=False)


def test_vocab_loading(tmp_path: Path, tiny_dir: Path) -> None:
    vocab = load_vocab(tiny_dir / VOCAB_FILE)
    assert len(vocab) == 363 and min(vocab.values()) == 1 and max(vocab.values()) == 363
    assert vocab[","] == 1 and vocab["."] == 2
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(LyricsError, match="cannot read the phone vocabulary"):
        load_vocab(tmp_path / "bad.json")
