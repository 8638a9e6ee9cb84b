"""API-key checks, as ACE-Step does them (spec/acestep-api.md §2.3).

Auth is on when ``ACESTEP_API_KEY`` (or ``SONGQUEUE_API_KEY``) is set, even to ``""``. Routes
that parse a body accept the body's ``ai_token`` or the ``Authorization`` header (with or
without ``Bearer ``); the others accept the header only, and ``/v1/audio`` also takes
``?ai_token=`` because an ``<audio src>`` tag cannot send headers. ``/health`` is always open.
These are functions the routes call, not a middleware, because the body token is only known
once the route has parsed the body.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from service.config import Settings
from service.errors import Unauthorized

BEARER = "Bearer "  # case-sensitive, one space: ACE-Step strips exactly this prefix


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _check_header(settings: Settings, request: Request, missing: str) -> None:
    assert settings.api_key is not None
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized(missing)
    if not _matches(header.removeprefix(BEARER), settings.api_key):
        raise Unauthorized("Invalid API key")


def require_token(settings: Settings, request: Request, fields: Mapping[str, Any]) -> None:
    """Body ``ai_token`` first (a wrong one is refused even with a good header), then the header."""
    if not settings.auth_enabled:
        return
    assert settings.api_key is not None
    token = fields.get("ai_token")
    if token:
        if not _matches(str(token), settings.api_key):
            raise Unauthorized("Invalid ai_token")
        return
    _check_header(settings, request, "Missing ai_token or Authorization header")


def require_header(settings: Settings, request: Request, *, allow_query: bool = False) -> None:
    """The ``Authorization`` header; with ``allow_query`` also ``?ai_token=`` (for ``<audio>``)."""
    if not settings.auth_enabled:
        return
    assert settings.api_key is not None
    token = request.query_params.get("ai_token") if allow_query else None
    if token and not request.headers.get("authorization"):
        if not _matches(token, settings.api_key):
            raise Unauthorized("Invalid ai_token")
        return
    _check_header(settings, request, "Missing Authorization header")
