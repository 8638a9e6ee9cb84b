"""Shared fixtures. Each test gets its own data directory; nothing touches the user's home."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.config import Settings, load_settings
from service.schemas import GenerationRequest
from service.store import queue
from service.store.db import Database, open_database
from service.store.migrate import upgrade


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, env_file=None, home=str(tmp_path / "home"))


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    upgrade(settings.database)
    database = open_database(settings.database)
    yield database
    await database.dispose()


def make_request(**fields: object) -> GenerationRequest:
    base: dict[str, object] = {"prompt": "calm piano", "audio_duration": 2.0, "batch_size": 1}
    base.update(fields)
    request = GenerationRequest(**base)  # type: ignore[arg-type]
    if not request.seeds:
        request.seeds = list(range(request.batch_size))
    return request


async def submit(
    db: Database, *, priority: int = 0, max_attempts: int = 3, **fields: object
) -> queue.Enqueued:
    """Enqueue a small text2music job straight into the store."""
    request = make_request(**fields)
    return await queue.enqueue(
        db,
        job_id=str(uuid.uuid4()),
        request=request,
        duration=float(request.audio_duration or 2.0),
        priority=priority,
        max_attempts=max_attempts,
    )
