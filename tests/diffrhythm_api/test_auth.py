"""With an API key configured, the DiffRhythm routes need it like the ACE-Step ones do:
``Authorization: Bearer <key>`` (or an ``ai_token`` form field on submissions);
``/api/health``, ``/docs`` and ``/openapi.json`` stay open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.diffrhythm_api.conftest import LRC, Server, run_server

KEY = "s3cret"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from models.testing import TimedEngine

    with run_server(tmp_path_factory.mktemp("dr-auth"), TimedEngine(), api_key=KEY) as s:
        yield s


def _generate(
    server: Server, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> int:
    res = server.client.post(
        "/api/generate",
        files={"lyrics": ("song.lrc", LRC.encode())},
        data={"ref_prompt": "folk", **(data or {})},
        headers=headers,
    )
    return res.status_code


def test_open_routes(locked: Server) -> None:
    for path in ("/api/health", "/openapi.json", "/docs", "/redoc"):
        assert locked.client.get(path).status_code == 200, path


def test_key_required(locked: Server, tmp_path: Path) -> None:
    assert _generate(locked) == 401
    assert _generate(locked, headers={"Authorization": "Bearer wrong"}) == 401
    assert _generate(locked, data={"ai_token": KEY}) == 200
    bearer = {"Authorization": f"Bearer {KEY}"}
    res = locked.client.post(
        "/api/generate",
        files={"lyrics": ("song.lrc", LRC.encode())},
        data={"ref_prompt": "folk"},
        headers=bearer,
    )
    assert res.status_code == 200
    task_id = res.json()["task_id"]
    for method, path in (
        ("GET", f"/api/status/{task_id}"),
        ("GET", f"/api/download/{task_id}"),
        ("DELETE", f"/api/tasks/{task_id}"),
    ):
        assert locked.client.request(method, path).status_code == 401, path
    locked.client.headers.update(bearer)
    try:
        done = locked.wait_done(task_id)
        assert done["status"] == "completed"
        assert locked.client.get(f"/api/download/{task_id}").status_code == 200
        assert locked.client.delete(f"/api/tasks/{task_id}").status_code == 200
    finally:
        del locked.client.headers["Authorization"]
