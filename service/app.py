"""The Starlette application: routes, middleware and error translation, written out as lists."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service import web
from service.api import acestep, acestep_info, acestep_tasks, diffrhythm, jobs, openai, openapi
from service.config import Settings
from service.errors import SongqueueError
from service.files import ensure_dirs
from service.metrics import AccessLogMiddleware, HttpMetricsMiddleware, Metrics
from service.metrics import routes as metrics_routes
from service.retention import retention_loop
from service.state import AppState
from service.storage import open_object_store
from service.store.db import DatabaseBusy, open_database
from service.store.eta import EtaCache

log = logging.getLogger(__name__)

LOCAL_ORIGINS = ["null", "http://localhost", "http://127.0.0.1"]
LOCAL_ORIGIN_REGEX = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$"
RETRY_AFTER_SECONDS = "1"


async def songqueue_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SongqueueError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=400)


async def database_busy(request: Request, exc: Exception) -> Response:
    log.warning("database busy: %s", exc)
    return JSONResponse(
        {"detail": "database is busy; retry shortly"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def cors_middleware(settings: Settings) -> Middleware:
    """Localhost and ``file://`` pages by default (as upstream); ``CORS_ORIGINS`` adds more."""
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if "*" in origins:
        return Middleware(
            CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"]
        )
    return Middleware(
        CORSMiddleware,
        allow_origins=LOCAL_ORIGINS + origins,
        allow_origin_regex=LOCAL_ORIGIN_REGEX,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "Idempotency-Key"],
    )


def create_app(settings: Settings) -> Starlette:
    """Build the app; the database engines open lazily and close with the lifespan."""
    ensure_dirs(settings)
    db = open_database(
        settings.database,
        busy_timeout_ms=settings.busy_timeout_ms,
        synchronous=settings.sqlite_synchronous,
    )
    state = AppState(settings=settings, db=db, etas=EtaCache(db), store=open_object_store(settings))
    metrics = Metrics(db)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sweeper = None
        if settings.retention_hours > 0:  # a background task: sweeps never block requests
            sweeper = asyncio.create_task(retention_loop(db, settings), name="retention")
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            await state.batcher.close()
            await db.dispose()

    app = Starlette(
        debug=settings.debug,
        routes=[
            *acestep_info.routes,
            *acestep_tasks.routes,
            *acestep.routes,
            *jobs.routes,
            *openai.routes,
            *diffrhythm.routes,
            *openapi.routes,
            *metrics_routes,
            *web.routes,
        ],
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(HttpMetricsMiddleware, metrics=metrics),
            cors_middleware(settings),
        ],
        exception_handlers={
            SongqueueError: songqueue_error,
            HTTPException: http_error,
            msgspec.ValidationError: validation_error,
            DatabaseBusy: database_busy,
        },
        lifespan=lifespan,
    )
    app.state.songqueue = state
    app.state.metrics = metrics
    return app
