"""Limits and hostile input beyond the field matrix: upload sizes, broken audio, symlinks,
Unicode everywhere. Each gets a clear 4xx (or a finished job), and the server keeps serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

UNICODE_CAPTION = "Ballade für Zoë 🎹 — 夜の雨, نسيم, Ωμέγα"
UNICODE_LYRICS = "[verse]\nДождь идёт 🌧\n[chorus]\n雨が降る、心が踊る\n"


def _refused(server: Any, res: Any, status: int, detail: str, before: int) -> None:
    assert res.status_code == status, res.text
    body = res.json()
    assert set(body) == {"detail"} and detail in body["detail"], body
    assert server.total_jobs() == before
    assert server.client.get("/health").status_code == 200  # still serving


def test_upload_over_the_limit_is_413_and_leaves_no_file(make_server: Any) -> None:
    with make_server(worker=False, max_upload_bytes=64 * 1024) as small:
        before, uploads = small.total_jobs(), small.uploads
        files = {"src_audio": ("big.wav", b"\0" * (200 * 1024), "audio/wav")}
        res = small.post("/release_task", {"task_type": "cover"}, "multipart", files=files)
        _refused(small, res, 413, "larger than", before)
        assert small.uploads == uploads


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.wav", b""),
        ("truncated.wav", None),  # a real WAV header cut off after 60 bytes
        ("noise.flac", bytes(range(256)) * 16),
    ],
)
def test_broken_audio_uploads_are_refused(
    server: Any, source_wav: Path, name: str, content: bytes | None
) -> None:
    data = source_wav.read_bytes()[:60] if content is None else content
    before, uploads = server.total_jobs(), server.uploads
    files = {"src_audio": (name, data, "audio/wav")}
    res = server.post("/release_task", {"task_type": "repaint"}, "multipart", files=files)
    _refused(server, res, 400, "src_audio_path", before)
    assert server.uploads == uploads


def test_audio_refuses_symlinks_that_leave_the_outputs(server: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.mp3"
    secret.write_bytes(b"ID3 not for you")
    link_dir = server.settings.outputs_dir / "planted"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "song.mp3"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    res = server.client.get("/v1/audio", params={"path": str(link)})
    assert res.status_code == 403
    assert res.json() == {"detail": "Access denied: path outside allowed directory"}
    dir_link = server.settings.outputs_dir / "escape"
    if not dir_link.exists():
        dir_link.symlink_to(tmp_path, target_is_directory=True)
    res = server.client.get("/v1/audio", params={"path": str(dir_link / "secret.mp3")})
    assert res.status_code == 403


@pytest.mark.parametrize("encoding", ["json", "form", "multipart"])
def test_unicode_everywhere_round_trips(server: Any, encoding: str) -> None:
    fields = {
        "prompt": UNICODE_CAPTION,
        "lyrics": UNICODE_LYRICS,
        "audio_duration": 2,
        "batch_size": 1,
        "key_scale": "C# minor",
        "audio_format": "wav",
    }
    task_id = server.release(fields, encoding)
    entry, items = server.wait_task(task_id)
    assert entry["status"] == 1, entry
    assert items[0]["prompt"] == UNICODE_CAPTION and items[0]["lyrics"] == UNICODE_LYRICS
    assert items[0]["metas"]["prompt"] == UNICODE_CAPTION
    assert server.download(items[0]["file"]).status_code == 200


def test_unicode_upload_filename_and_paths(server: Any, source_wav: Path) -> None:
    files = {"src_audio": ("песня 🎵.wav", source_wav.read_bytes(), "audio/wav")}
    task_id = server.release(
        {"task_type": "cover", "audio_duration": 2, "batch_size": 1}, "multipart", files=files
    )
    entry, _ = server.wait_task(task_id)
    assert entry["status"] == 1, entry
    res = server.client.get("/v1/audio", params={"path": "/tmp/ñ/../../etc/passwd"})
    assert res.status_code == 403
    res = server.post("/release_task", {"task_type": "cover", "src_audio_path": "/tmp/\u202e.wav"})
    assert res.status_code == 400 and "not found" in res.json()["detail"]
