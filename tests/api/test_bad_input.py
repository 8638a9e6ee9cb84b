"""The bad-input matrix (spec §4.6, §12): each case gets its 4xx with ``{"detail": ...}``,
never a 500, and leaves nothing behind: no job row, no upload file."""

from __future__ import annotations

from typing import Any

import pytest

SUBMIT_PATHS = ("/release_task", "/v1/music/generate")
JSON = {"Content-Type": "application/json"}

# (id, request kwargs for httpx, status, substring of detail)
RAW_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed-json", {"content": b'{"prompt": "x",', "headers": JSON}, 400, "Malformed JSON"),
    (
        "malformed-json-no-ct",
        {"content": b'{"prompt": oops}'},
        400,
        "Invalid JSON body (hint: set 'Content-Type: application/json')",
    ),
    ("json-array", {"content": b'["prompt"]', "headers": JSON}, 400, "must be an object"),
    ("json-string", {"content": b'"prompt"', "headers": JSON}, 400, "must be an object"),
    ("json-array-no-ct", {"content": b" [1, 2]"}, 400, "must be an object"),
    ("empty-no-ct", {"content": b""}, 415, "Unsupported Content-Type: (missing)"),
    (
        "plain-text",
        {"content": b"make a song", "headers": {"Content-Type": "text/plain"}},
        415,
        "Unsupported Content-Type: text/plain",
    ),
    (
        "broken-multipart",
        {
            "content": b"--nope\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx",
            "headers": {"Content-Type": "multipart/form-data; boundary=other"},
        },
        400,
        "multipart",
    ),
    (
        "body-too-large",
        {"content": b'{"prompt": "' + b"x" * (2 << 20) + b'"}', "headers": JSON},
        413,
        "larger than",
    ),
]

# (id, fields, status, substring of detail): sent in every encoding
FIELD_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("task-type", {"prompt": "x", "task_type": "remix"}, 400, "task_type"),
    ("audio-format", {"prompt": "x", "audio_format": "aiff"}, 400, "audio_format"),
    ("lm-backend", {"prompt": "x", "lm_backend": "tensorrt"}, 400, "lm_backend"),
    ("batch-size-high", {"prompt": "x", "batch_size": 99}, 400, "batch_size"),
    ("batch-size-zero", {"prompt": "x", "batch_size": 0}, 400, "batch_size"),
    ("bpm", {"prompt": "x", "bpm": 1000}, 400, "bpm"),
    ("duration", {"prompt": "x", "audio_duration": 10_000}, 400, "audio_duration"),
    ("guidance-nan", {"prompt": "x", "guidance_scale": "nan"}, 400, "guidance_scale"),
    ("steps", {"prompt": "x", "inference_steps": 500}, 400, "inference_steps"),
    ("cover-strength", {"prompt": "x", "audio_cover_strength": 2}, 400, "audio_cover_strength"),
    ("prompt-too-long", {"prompt": "x" * 10_001}, 400, "prompt"),
    ("repaint-no-source", {"prompt": "x", "task_type": "repaint"}, 400, "needs a source"),
    (
        "path-outside",
        {"task_type": "cover", "src_audio_path": "/etc/hostname"},
        400,
        "outside the allowed directories",
    ),
    (
        "path-traversal",
        {"task_type": "cover", "src_audio_path": "/tmp/../etc/hostname"},
        400,
        "path traversal",
    ),
    (
        "path-missing-file",
        {"task_type": "cover", "src_audio_path": "/tmp/songqueue-no-such-file.wav"},
        400,
        "not found",
    ),
    (
        "reference-outside",
        {"prompt": "x", "reference_audio_path": "/etc/hostname"},
        400,
        "outside the allowed directories",
    ),
]


def _check_refused(
    server: Any, res: Any, status: int, detail: str, before: int, uploads: list[Any]
) -> None:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/json")
    body = res.json()
    assert set(body) == {"detail"}, body
    assert detail in body["detail"], body
    assert server.total_jobs() == before, "a refused request left a job row"
    assert server.uploads == uploads, "a refused request left an upload file"


@pytest.mark.parametrize("path", SUBMIT_PATHS)
@pytest.mark.parametrize(("case", "kwargs", "status", "detail"), RAW_CASES, ids=lambda c: c)
def test_raw_bodies(
    server: Any, path: str, case: str, kwargs: dict[str, Any], status: int, detail: str
) -> None:
    before, uploads = server.total_jobs(), server.uploads
    res = server.client.post(path, **kwargs)
    _check_refused(server, res, status, detail, before, uploads)


@pytest.mark.parametrize("encoding", ("json", "form", "multipart"))
@pytest.mark.parametrize(("case", "fields", "status", "detail"), FIELD_CASES, ids=lambda c: c)
def test_invalid_fields(
    server: Any, encoding: str, case: str, fields: dict[str, Any], status: int, detail: str
) -> None:
    before, uploads = server.total_jobs(), server.uploads
    res = server.post("/release_task", fields, encoding)
    _check_refused(server, res, status, detail, before, uploads)


def test_invalid_field_era_a(server: Any) -> None:
    before, uploads = server.total_jobs(), server.uploads
    res = server.post("/v1/music/generate", {"caption": "x", "task_type": "remix"})
    _check_refused(server, res, 400, "task_type", before, uploads)


@pytest.mark.parametrize(
    ("case", "fields", "detail"),
    [
        ("bad-enum", {"task_type": "cover", "audio_format": "aiff"}, "audio_format"),
        ("bad-range", {"task_type": "cover", "batch_size": 50}, "batch_size"),
        ("repaint-order", {"task_type": "repaint", "repainting_start": 2, "repainting_end": 1}, ""),
    ],
)
def test_upload_removed_when_refused(
    server: Any, source_wav: Any, case: str, fields: dict[str, Any], detail: str
) -> None:
    """A valid upload with an invalid field: 400, and the saved upload is deleted again."""
    before, uploads = server.total_jobs(), server.uploads
    files = {"src_audio": ("song.wav", source_wav.read_bytes(), "audio/wav")}
    res = server.post("/release_task", fields, "multipart", files=files)
    _check_refused(server, res, 400, detail, before, uploads)


@pytest.mark.parametrize("field", ("src_audio", "ctx_audio", "reference_audio", "ref_audio"))
def test_garbage_upload(server: Any, field: str) -> None:
    """An upload that is not audio is refused at submission, not in the worker."""
    before, uploads = server.total_jobs(), server.uploads
    files = {field: ("song.mp3", b"this is not audio at all" * 10, "audio/mpeg")}
    res = server.post("/release_task", {"task_type": "cover"}, "multipart", files=files)
    _check_refused(server, res, 400, "audio_path", before, uploads)


def test_query_result_bad_bodies(server: Any) -> None:
    post = server.client.post
    res = post("/query_result", content=b"{oops", headers=JSON)
    assert res.status_code == 400 and "Malformed JSON" in res.json()["detail"]
    res = post("/query_result", json={"task_id_list": {"a": 1}})
    assert res.status_code == 400 and "task_id_list" in res.json()["detail"]
    res = post("/query_result", content=b"[1]", headers=JSON)
    assert res.status_code == 400 and res.json() == {"detail": "JSON payload must be an object"}


def test_unknown_ids(server: Any) -> None:
    res = server.client.get("/v1/jobs/no-such-job")
    assert res.status_code == 404 and res.json() == {"detail": "Job not found"}
    res = server.client.post("/query_result", json={"task_id_list": ["no-such-task"]})
    assert res.status_code == 200
    assert res.json()["data"] == [{"task_id": "no-such-task", "status": 0, "result": "[]"}]


def test_audio_bad_paths(server: Any) -> None:
    get = server.client.get
    res = get("/v1/audio")
    assert res.status_code == 422 and "path" in res.json()["detail"]
    res = get("/v1/audio", params={"path": "/etc/hostname"})
    assert res.status_code == 403
    assert res.json() == {"detail": "Access denied: path outside allowed directory"}
    res = get("/v1/audio", params={"path": str(server.settings.outputs_dir / "../songqueue.db")})
    assert res.status_code == 403
    res = get("/v1/audio", params={"path": str(server.settings.outputs_dir / "x" / "none.mp3")})
    assert res.status_code == 404 and res.json() == {"detail": "Audio file not found"}


def test_unknown_route_and_method(server: Any) -> None:
    res = server.client.get("/no/such/route")
    assert res.status_code == 404 and res.json() == {"detail": "Not Found"}
    res = server.client.get("/release_task")
    assert res.status_code == 405 and res.json() == {"detail": "Method Not Allowed"}


def test_queue_full(make_server: Any, source_wav: Any) -> None:
    """Past ``ACESTEP_QUEUE_MAXSIZE`` queued jobs: 429, no row, upload removed (no phantom)."""
    with make_server(worker=False, queue_maxsize=2) as small:
        for _ in range(2):
            small.release({"prompt": "x", "audio_duration": 2, "batch_size": 1})
        for path in SUBMIT_PATHS:
            res = small.post(path, {"prompt": "one too many"})
            _check_refused(small, res, 429, "Server busy: queue is full", 2, [])
        files = {"src_audio": ("song.wav", source_wav.read_bytes(), "audio/wav")}
        res = small.post("/release_task", {"task_type": "cover"}, "multipart", files=files)
        _check_refused(small, res, 429, "Server busy: queue is full", 2, [])
        stats = small.client.get("/v1/stats").json()["data"]
        assert stats["queue_size"] == 2 and stats["queue_maxsize"] == 2
