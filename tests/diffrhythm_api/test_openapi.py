"""``/openapi.json``: every route of both APIs, schemas that resolve, examples and real
responses that match the declared Structs (so the document cannot drift from the code)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from starlette.routing import Route

from service.api import openapi
from service.requests import FIELDS
from tests.diffrhythm_api.conftest import LRC, Server

ACESTEP_PATHS = {
    "/release_task",
    "/query_result",
    "/v1/audio",
    "/health",
    "/v1/stats",
    "/v1/models",
    "/v1/model_inventory",
    "/v1/init",
    "/format_input",
    "/create_random_sample",
    "/v1/music/generate",
    "/v1/music/random",
    "/v1/jobs/{job_id}",
}
DIFFRHYTHM_PATHS = {
    "/api/health",
    "/api/generate",
    "/api/edit",
    "/api/status/{task_id}",
    "/api/download/{task_id}",
    "/api/tasks/{task_id}",
}


@pytest.fixture(scope="module")
def doc(server: Server) -> dict[str, Any]:
    res = server.client.get("/openapi.json")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/json"
    return dict(res.json())


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_route_is_documented(server: Server, doc: dict[str, Any]) -> None:
    from service.app import create_app

    app = create_app(server.settings)
    for route in app.routes:
        if not isinstance(route, Route) or route.path in openapi.DOC_PATHS:
            continue  # mounts (static files) are not operations
        path = route.path
        for method in route.methods or {"GET"}:
            if method != "HEAD":
                assert method.lower() in doc["paths"].get(path, {}), (method, path)
    assert set(doc["paths"]) >= ACESTEP_PATHS | DIFFRHYTHM_PATHS
    assert not set(doc["paths"]) & openapi.DOC_PATHS
    assert doc["openapi"].startswith("3.1")


def test_schemas_resolve_and_operations_are_described(doc: dict[str, Any]) -> None:
    names = set(doc["components"]["schemas"])
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in names, ref
    for path in ACESTEP_PATHS | DIFFRHYTHM_PATHS:
        for op in doc["paths"][path].values():
            assert op["summary"] and op["tags"][0] in ("ACE-Step", "DiffRhythm")
            assert "200" in op["responses"]
            params = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert params == set(re.findall(r"{(\w+)}", path))


def test_diffrhythm_forms(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for path, form, required in (
        ("/api/generate", "DiffRhythmGenerateForm", {"lyrics"}),
        ("/api/edit", "DiffRhythmEditForm", {"lyrics", "ref_song", "edit_segments"}),
    ):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{form}"}
        assert body["example"]
        schema = schemas[form]
        assert set(schema["required"]) == required
        assert schema["properties"]["lyrics"]["format"] == "binary"
        assert schema["properties"]["audio_length"]["minimum"] == 95
        assert schema["properties"]["audio_length"]["maximum"] == 285
        errors = doc["paths"][path]["post"]["responses"]["400"]
        assert errors["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorDetail")
    status = doc["paths"]["/api/status/{task_id}"]["get"]["responses"]
    assert set(status) == {"200", "401", "404"}
    assert set(schemas["TaskStatus"]["required"]) >= {
        "task_id",
        "status",
        "progress",
        "message",
        "output_path",
        "created_at",
        "completed_at",
        "error",
    }
    assert set(schemas["TaskStatus"]["properties"]["status"]["enum"]) == {
        "queued",
        "processing",
        "completed",
        "failed",
    }


def test_acestep_request_lists_every_parser_field(doc: dict[str, Any]) -> None:
    props = doc["components"]["schemas"]["AceStepRequest"]["properties"]
    assert set(props) == set(FIELDS) | {"ai_token"}
    assert "caption" in props["prompt"]["description"]  # aliases are documented
    upload = doc["components"]["schemas"]["AceStepUpload"]["properties"]
    assert {"src_audio", "reference_audio"} <= set(upload)
    release = doc["paths"]["/release_task"]["post"]["requestBody"]["content"]
    assert set(release) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }


def test_examples_match_their_schemas() -> None:
    checked = 0
    for key, op in openapi.OPERATIONS.items():
        if op.response is not None and op.example is not None:
            msgspec.convert(op.example, op.response)
            checked += 1
        if op.body is not None and op.body.example is not None and openapi.JSON in op.body.media:
            msgspec.convert(op.body.example, op.body.schema)
            checked += 1
        assert op.summary, key
    assert checked >= 14


def test_real_responses_match_the_declared_schemas(server: Server) -> None:
    """Each documented JSON response, as the server sends it, converts to its Struct."""
    c = server.client
    created = c.post(
        "/api/generate",
        files={"lyrics": ("song.lrc", LRC.encode())},
        data={"ref_prompt": "folk"},
    ).json()
    task_id = created["task_id"]
    server.wait_done(task_id)
    job_id = c.post("/v1/music/generate", json={"prompt": "x", "audio_duration": 2}).json()
    release = c.post("/release_task", json={"prompt": "x", "audio_duration": 2}).json()
    answers: dict[tuple[str, str], Any] = {
        ("POST", "/api/generate"): created,
        ("GET", "/api/health"): c.get("/api/health").json(),
        ("GET", "/api/status/{task_id}"): c.get(f"/api/status/{task_id}").json(),
        ("POST", "/v1/music/generate"): job_id,
        ("GET", "/v1/jobs/{job_id}"): c.get(f"/v1/jobs/{job_id['job_id']}").json(),
        ("POST", "/v1/jobs/{job_id}/cancel"): c.post(f"/v1/jobs/{job_id['job_id']}/cancel").json(),
        ("POST", "/release_task"): release,
        ("POST", "/query_result"): c.post(
            "/query_result", json={"task_id_list": [release["data"]["task_id"], task_id]}
        ).json(),
        ("GET", "/health"): c.get("/health").json(),
        ("GET", "/v1/stats"): c.get("/v1/stats").json(),
        ("GET", "/v1/models"): c.get("/v1/models").json(),
        ("GET", "/v1/model_inventory"): c.get("/v1/model_inventory").json(),
        ("POST", "/v1/init"): c.post("/v1/init", json={}).json(),
        ("POST", "/format_input"): c.post("/format_input", json={"prompt": "lofi"}).json(),
        ("POST", "/create_random_sample"): c.post("/create_random_sample", json={}).json(),
        ("DELETE", "/api/tasks/{task_id}"): c.delete(f"/api/tasks/{task_id}").json(),
    }
    for key, body in answers.items():
        schema = openapi.OPERATIONS[key].response
        msgspec.convert(body, schema)  # raises with the path of any mismatch


def test_docs_pages_are_offline(server: Server) -> None:
    for page in ("/docs", "/redoc"):
        res = server.client.get(page)
        assert res.status_code == 200
        assert res.headers["content-type"].startswith("text/html")
        assert not re.search(r"(src|href)=\"https?://", res.text), res.text
        assert "/openapi.json" in res.text
    for name, media in (
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "text/javascript"),
        ("logo-mini.svg", "image/svg+xml"),
    ):
        res = server.client.get(f"/docs/assets/{name}")
        assert res.status_code == 200, name
        assert res.headers["content-type"].startswith(media)
        assert b"cdn.redoc.ly" not in res.content
    assert server.client.get("/docs/assets/..%2F..%2Fsetup.py").status_code == 404
    assert server.client.get("/docs/assets/index.html").status_code == 404
