"""Every refusal of the DiffRhythm API: 400 ``{"detail": ...}`` for bad parameters (nothing
queued, no upload left behind), 404 for unknown tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.diffrhythm_api.conftest import LRC, Server

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _jobs(server: Server) -> int:
    res = server.client.get("/v1/stats")
    assert res.status_code == 200
    return int(res.json()["data"]["jobs"]["total"])


def _refused(
    server: Server, path: str, files: dict[str, Any], data: dict[str, str], expect: str
) -> None:
    before_jobs, before_files = _jobs(server), server.tree()
    res = server.client.post(path, files=files, data=data)
    assert res.status_code == 400, res.text
    detail = res.json()["detail"]
    assert expect.lower() in detail.lower(), detail
    assert _jobs(server) == before_jobs
    assert server.tree() == before_files


def lrc() -> tuple[str, bytes]:
    return ("song.lrc", LRC.encode())


@pytest.mark.parametrize(
    ("data", "extra_files", "expect"),
    [
        ({}, {}, "Either ref_audio or ref_prompt must be provided"),
        ({"ref_prompt": "   "}, {}, "Either ref_audio or ref_prompt must be provided"),
        ({"ref_prompt": "folk"}, {"ref_audio": ("r.wav", b"RIFF")}, "not both"),
        ({"ref_prompt": "folk", "audio_length": "94"}, {}, "audio_length must be 95"),
        ({"ref_prompt": "folk", "audio_length": "286"}, {}, "audio_length must be 95"),
        ({"ref_prompt": "folk", "audio_length": "long"}, {}, "audio_length must be 95"),
        ({"ref_prompt": "folk", "audio_length": "95.5"}, {}, "audio_length must be 95"),
        ({"ref_prompt": "folk", "batch_infer_num": "0"}, {}, "batch_infer_num"),
        ({"ref_prompt": "folk", "batch_infer_num": "9"}, {}, "batch_infer_num"),
        ({"ref_prompt": "folk", "chunked": "maybe"}, {}, "chunked must be true or false"),
        ({}, {"ref_audio": ("notes.wav", b"this is not audio")}, "ref_audio"),
        ({"ref_prompt": "folk", "ref_audio": "/etc/passwd"}, {}, "ref_audio must be a file"),
    ],
)
def test_generate_bad_parameters(
    server: Server, data: dict[str, str], extra_files: dict[str, Any], expect: str
) -> None:
    _refused(server, "/api/generate", {"lyrics": lrc(), **extra_files}, data, expect)


@pytest.mark.parametrize(
    ("lyrics", "expect"),
    [
        (("notes.txt", b"just some words\nwithout any time tags\n"), "LRC"),
        (("song.lrc", b"[00:01.00]ok\nthen a line without a tag\n"), "LRC"),
        (("song.lrc", b"[ar:Someone]\n[ti:Only tags]\n"), "LRC"),
        (("song.lrc", b"\xff\xfe\x00\x00binary"), "UTF-8"),
    ],
)
def test_lyrics_not_lrc(server: Server, lyrics: tuple[str, bytes], expect: str) -> None:
    _refused(server, "/api/generate", {"lyrics": lyrics}, {"ref_prompt": "folk"}, expect)


def test_lyrics_missing(server: Server, files: dict[str, Path]) -> None:
    with files["wav"].open("rb") as ref:
        _refused(server, "/api/generate", {"ref_audio": ref}, {}, "lyrics file (.lrc) is required")


def test_not_multipart(server: Server) -> None:
    before = _jobs(server)
    res = server.client.post("/api/generate", json={"ref_prompt": "folk", "audio_length": 95})
    assert res.status_code == 400
    assert "lyrics" in res.json()["detail"]
    assert _jobs(server) == before


@pytest.mark.parametrize(
    ("segments", "expect"),
    [
        ("[[-1,25],[50.0", "not valid JSON"),
        ("[]", "non-empty list"),
        ('{"start": 1}', "non-empty list"),
        ("[[1,2,3]]", "[start, end]"),
        ("[[1]]", "[start, end]"),
        ('[["a", 2]]', "[start, end]"),
        ("[[true, 2]]", "[start, end]"),
        ("[[20, 10]]", "end must be after start"),
        ("[[5, 5]]", "end must be after start"),
        ("[[-2, 10]]", "-1"),
        ("[[100, -1]]", "starts after audio_length"),
    ],
)
def test_edit_malformed_segments(
    server: Server, files: dict[str, Path], segments: str, expect: str
) -> None:
    with files["wav"].open("rb") as song:
        _refused(
            server,
            "/api/edit",
            {"lyrics": lrc(), "ref_song": ("song.wav", song)},
            {"ref_prompt": "folk", "edit_segments": segments},
            expect,
        )


def test_edit_missing_parts(server: Server, files: dict[str, Path]) -> None:
    segments = "[[-1,25],[50.0,-1]]"
    _refused(
        server,
        "/api/edit",
        {"lyrics": lrc()},
        {"ref_prompt": "folk", "edit_segments": segments},
        "ref_song file is required",
    )
    with files["wav"].open("rb") as song:
        _refused(
            server,
            "/api/edit",
            {"lyrics": lrc(), "ref_song": ("song.wav", song)},
            {"ref_prompt": "folk"},
            "edit_segments is required",
        )
    with files["wav"].open("rb") as song:
        _refused(
            server,
            "/api/edit",
            {"lyrics": lrc(), "ref_song": ("song.wav", song)},
            {"edit_segments": segments},
            "Either ref_audio or ref_prompt must be provided",
        )
    _refused(
        server,
        "/api/edit",
        {"lyrics": lrc(), "ref_song": ("song.wav", b"not audio at all")},
        {"ref_prompt": "folk", "edit_segments": segments},
        "ref_song",
    )


def test_unknown_task(server: Server) -> None:
    for res in (
        server.client.get(f"/api/status/{UNKNOWN}"),
        server.client.get(f"/api/download/{UNKNOWN}"),
        server.client.delete(f"/api/tasks/{UNKNOWN}"),
    ):
        assert res.status_code == 404
        assert res.json() == {"detail": "Task not found"}


def test_failed_task_reports_error(server: Server) -> None:
    """A job that failed (here: cancelled through the ACE-Step route) reads ``failed``."""
    server.engine.step_seconds = 0.25  # type: ignore[attr-defined]
    try:
        task_id = server.generate()
        res = server.client.post(f"/v1/jobs/{task_id}/cancel")
        assert res.status_code == 200
        done = server.wait_done(task_id)
    finally:
        server.engine.step_seconds = 0.0  # type: ignore[attr-defined]
    assert done["status"] == "failed"
    assert done["error"] == "cancelled by request"
    assert done["output_path"] is None
    assert server.client.get(f"/api/download/{task_id}").status_code == 400
