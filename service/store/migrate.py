"""Apply Alembic migrations from code (``songqueue migrate``, ``songqueue up``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from service.store.db import sqlite_path

SCRIPT_LOCATION = Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``. Run it once, before APIs and workers start."""
    path = sqlite_path(url)
    if path is not None and str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    _outside_event_loop(command.upgrade, alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    _outside_event_loop(command.downgrade, alembic_config(url), revision)


def _outside_event_loop(fn: Callable[..., None], *args: object) -> None:
    """env.py runs its own event loop, which cannot nest: use a thread when one is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(*args)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn, *args).result()
