"""Shared fixtures. Each test gets its own data directory; nothing touches the user's home."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from service.config import Settings, load_settings
from service.schemas import GenerationRequest
from service.store import queue
from service.store.db import Database, open_database
from service.store.migrate import upgrade
from tests import pg


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that each test copies (CREATE DATABASE ... TEMPLATE)."""
    reason = pg.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    name = pg.new_name("sq_template")
    pg.admin(f'CREATE DATABASE "{name}"')
    upgrade(pg.database_url(name))
    yield name
    pg.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backend() -> str:
    """The database under test; suites that run on both override this with params."""
    return "sqlite"


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest, backend: str) -> Settings:
    database_url = None
    if backend == "postgres":
        template = request.getfixturevalue("pg_template")
        name = pg.new_name()
        pg.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        request.addfinalizer(lambda: pg.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        database_url = pg.database_url(name)
    return load_settings(
        environ={}, env_file=None, home=str(tmp_path / "home"), database_url=database_url
    )


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
