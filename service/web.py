"""The web page: ``/`` serves ``static/index.html``, ``/static/*`` its script and styles.

The page is plain files with no build step; it talks to the same HTTP API every client uses
(era A ``/v1/music/generate``, ``/v1/jobs/{id}``, ``/v1/audio``), so it needs no routes of its own.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def index(request: Request) -> Response:
    """The page itself; open without a key (it holds no data, the API calls carry the key)."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


routes = [
    Route("/", index, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
]
