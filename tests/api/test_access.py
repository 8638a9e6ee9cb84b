"""With an API key set, every route but the health checks, the docs and the web page refuses a
request without it: walked over the app's real route list, so a new route cannot slip by."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.routing import Mount, Route

from service.app import create_app

PUBLIC = re.compile(r"^(/health|/api/health|/openapi\.json|/docs.*|/redoc.*|/|/static.*)$")
KEY = "s3cret"


def _routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        if isinstance(route, Route):
            path = re.sub(r"\{[^}]+\}", "some-id", route.path)
            for method in sorted(route.methods or {"GET"}):
                if method not in ("HEAD", "OPTIONS"):
                    found.append((method, path))
    return found


@pytest.fixture(scope="module")
def keyed(make_server: Any) -> Any:
    with make_server(worker=False, api_key=KEY) as server:
        yield server


def test_every_private_route_refuses_requests_without_the_key(keyed: Any) -> None:
    routes = _routes(create_app(keyed.settings))  # the same route list the server runs
    private = [(m, p) for m, p in routes if not PUBLIC.match(p)]
    assert len(private) >= 15
    open_routes = []
    for method, path in private:
        body = {"json": {}} if method == "POST" else {}  # what an unauthenticated client sends
        res = keyed.client.request(method, path, headers={}, **body)
        if res.status_code != 401:
            open_routes.append(f"{method} {path} -> {res.status_code}")
        else:
            assert "detail" in res.json()
    assert open_routes == [], "\n".join(open_routes)


def test_public_routes_stay_open(keyed: Any) -> None:
    for path in ("/health", "/api/health", "/openapi.json", "/docs"):
        assert keyed.client.get(path, headers={}).status_code == 200, path


def test_the_key_opens_them(keyed: Any) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    assert keyed.client.get("/v1/stats", headers=auth).status_code == 200
    assert keyed.client.get("/v1/stats", headers={"Authorization": KEY}).status_code == 200
    assert (
        keyed.client.get("/v1/stats", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
