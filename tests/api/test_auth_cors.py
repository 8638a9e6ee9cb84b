"""API key auth (spec §2.3) and CORS (spec §2.4), over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.config import load_settings

KEY = "s3cret-key"
BEARER = {"Authorization": f"Bearer {KEY}"}
TINY = {"prompt": "auth", "audio_duration": 2, "batch_size": 1}
MISSING_BODY = "Missing ai_token or Authorization header"
MISSING_HEADER = "Missing Authorization header"


@pytest.fixture(scope="module")
def secured(make_server: Any) -> Iterator[Any]:
    with make_server(api_key=KEY) as running:
        yield running


def _refused(res: Any, detail: str) -> None:
    assert res.status_code == 401, res.text
    assert res.json() == {"detail": detail}


def test_env_var_enables_auth() -> None:
    settings = load_settings(environ={"ACESTEP_API_KEY": "abc"}, env_file=None)
    assert settings.auth_enabled and settings.api_key == "abc"
    assert load_settings(environ={"ACESTEP_API_KEY": ""}, env_file=None).auth_enabled
    assert not load_settings(environ={}, env_file=None).auth_enabled


def test_health_is_always_open(secured: Any) -> None:
    res = secured.client.get("/health")
    assert res.status_code == 200 and res.json()["data"]["status"] == "ok"


@pytest.mark.parametrize("encoding", ("json", "form", "multipart"))
def test_body_token_or_header(secured: Any, encoding: str) -> None:
    post = secured.client.post
    before = secured.total_jobs()
    fields = TINY
    no_header = {"Authorization": ""}  # overrides the helper's Bearer header: counts as missing
    _refused(secured.post("/release_task", fields, encoding, headers=no_header), MISSING_BODY)
    assert secured.total_jobs() == before, "a refused submission left a job"
    ok = secured.post("/release_task", fields | {"ai_token": KEY}, encoding, headers=no_header)
    assert ok.status_code == 200, ok.text
    task_id = ok.json()["data"]["task_id"]
    # a wrong body token loses even with a good header
    wrong = secured.post("/release_task", fields | {"ai_token": "nope"}, encoding)
    _refused(wrong, "Invalid ai_token")
    # /query_result takes the same two ways
    res = post("/query_result", json={"task_id_list": [task_id], "ai_token": KEY})
    assert res.status_code == 200 and res.json()["data"][0]["task_id"] == task_id
    _refused(post("/query_result", json={"task_id_list": [task_id]}), MISSING_BODY)


def _refused_any(res: Any) -> None:
    assert res.status_code == 401, res.text


def test_missing_credentials_message(secured: Any) -> None:
    res = secured.client.post("/release_task", json=TINY)
    _refused(res, MISSING_BODY)
    res = secured.client.post("/release_task", json=TINY, headers={"Authorization": "Bearer x"})
    _refused(res, "Invalid API key")


@pytest.mark.parametrize("header", (f"Bearer {KEY}", KEY))
def test_header_with_or_without_bearer(secured: Any, header: str) -> None:
    auth = {"Authorization": header}
    res = secured.client.post("/release_task", json=TINY, headers=auth)
    assert res.status_code == 200, res.text
    assert secured.client.get("/v1/stats", headers=auth).status_code == 200
    # the prefix is case-sensitive, one space, as upstream
    res = secured.client.get("/v1/stats", headers={"Authorization": f"bearer {KEY}"})
    _refused(res, "Invalid API key")


@pytest.mark.parametrize("path", ("/v1/stats", "/v1/model_inventory"))
def test_header_only_routes(secured: Any, path: str) -> None:
    _refused(secured.client.get(path), MISSING_HEADER)
    _refused(secured.client.get(path, params={"ai_token": KEY}), MISSING_HEADER)
    assert secured.client.get(path, headers=BEARER).status_code == 200


def test_models_list_needs_the_key_when_one_is_set(secured: Any) -> None:
    """Upstream leaves /v1/models open; songqueue protects every route but health and docs."""
    assert secured.client.get("/v1/models").status_code == 401
    res = secured.client.get("/v1/models", headers=BEARER)
    assert res.status_code == 200 and res.json()["object"] == "list"


@pytest.mark.parametrize("path", ("/format_input", "/create_random_sample", "/v1/init"))
def test_helper_routes(secured: Any, path: str) -> None:
    _refused(secured.client.post(path, json={}), MISSING_BODY)
    assert secured.client.post(path, json={"ai_token": KEY}).status_code == 200
    assert secured.client.post(path, json={}, headers=BEARER).status_code == 200


def test_era_a_and_audio(secured: Any) -> None:
    client = secured.client
    _refused(client.post("/v1/music/generate", json=TINY), MISSING_BODY)
    res = client.post("/v1/music/generate", json=TINY | {"ai_token": KEY})
    assert res.status_code == 200
    job_id = res.json()["job_id"]
    _refused(client.get(f"/v1/jobs/{job_id}"), MISSING_HEADER)
    job = secured.wait_job(job_id)  # sends the Bearer header
    url = secured.base + job["result"]["first_audio_path"]
    _refused(client.get(url), MISSING_HEADER)
    assert client.get(url, headers=BEARER).status_code == 200
    # ``<audio src=...&ai_token=>`` (kpretty/ace-step-web) cannot send a header
    assert client.get(url + "&ai_token=" + KEY).status_code == 200
    _refused(client.get(url + "&ai_token=wrong"), "Invalid ai_token")


def test_empty_key_still_enables_auth(make_server: Any) -> None:
    """``ACESTEP_API_KEY=""`` turns auth on and then nothing authenticates (spec §2.3)."""
    with make_server(api_key="", worker=False) as locked:
        client = locked.client
        assert client.get("/health").status_code == 200
        _refused(client.post("/release_task", json=TINY | {"ai_token": ""}), MISSING_BODY)
        _refused_any(client.post("/release_task", json=TINY, headers={"Authorization": "x"}))
        _refused(client.get("/v1/stats"), MISSING_HEADER)
        res = client.get("/v1/stats", headers={"Authorization": "Bearer"})  # "Bearer " trimmed
        _refused_any(res)


# --- CORS ----------------------------------------------------------------------------------

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,authorization",
}


@pytest.mark.parametrize(
    "origin", ("null", "http://localhost", "http://localhost:5173", "http://127.0.0.1:8080")
)
def test_cors_allows_local_pages_by_default(server: Any, origin: str) -> None:
    """``ui/studio.html`` opened from ``file://`` sends ``Origin: null``."""
    res = server.client.options("/release_task", headers=PREFLIGHT | {"Origin": origin})
    assert res.status_code == 200
    assert res.headers["access-control-allow-origin"] == origin
    assert "POST" in res.headers["access-control-allow-methods"]
    assert "authorization" in res.headers["access-control-allow-headers"].lower()
    res = server.client.get("/health", headers={"Origin": origin})
    assert res.headers["access-control-allow-origin"] == origin


def test_cors_refuses_other_origins_by_default(server: Any) -> None:
    origin = {"Origin": "https://evil.example"}
    res = server.client.options("/release_task", headers=PREFLIGHT | origin)
    assert res.status_code == 400
    assert "access-control-allow-origin" not in res.headers
    assert "access-control-allow-origin" not in server.client.get("/health", headers=origin).headers


def test_cors_origins_setting(make_server: Any) -> None:
    with make_server(cors_origins="https://app.example, https://b.example", worker=False) as s:
        for origin in ("https://app.example", "https://b.example", "http://localhost:3000"):
            res = s.client.options("/query_result", headers=PREFLIGHT | {"Origin": origin})
            assert res.status_code == 200 and res.headers["access-control-allow-origin"] == origin
        res = s.client.options("/query_result", headers=PREFLIGHT | {"Origin": "https://c.example"})
        assert res.status_code == 400
    with make_server(cors_origins="*", worker=False) as s:
        res = s.client.get("/health", headers={"Origin": "https://anywhere.example"})
        assert res.headers["access-control-allow-origin"] == "*"
