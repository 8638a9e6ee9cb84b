"""Alembic builds exactly the schema that ``tables.py`` declares, keeps rows, and round-trips."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.config import Settings
from service.store import queue
from service.store.db import Database, open_database
from service.store.migrate import downgrade, upgrade
from service.store.tables import metadata
from tests.conftest import submit


EXPRESSION_INDEX = "ix_jobs_claim"  # (status, priority DESC, id): alembic cannot compare it


def _diff(url: str) -> list[object]:
    """Schema differences, with the expression index checked by its DDL instead."""
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = ?", (EXPRESSION_INDEX,)
        ).scalar()
    engine.dispose()
    assert ddl is not None and "priority DESC" in ddl
    return [d for d in diff if EXPRESSION_INDEX not in repr(d)]


async def test_upgrade_head_matches_tables(db: Database, settings: Settings) -> None:
    assert _diff(settings.database) == []


async def test_upgrade_keeps_rows_and_downgrade_round_trips(settings: Settings) -> None:
    upgrade(settings.database)
    db = open_database(settings.database)
    ids = [(await submit(db)).job.job_id for _ in range(3)]
    await db.dispose()
    upgrade(settings.database)  # already at head: a no-op that must keep every row
    db = open_database(settings.database)
    assert set((await queue.get_jobs(db, ids)).keys()) == set(ids)
    await db.dispose()
    downgrade(settings.database, "base")
    upgrade(settings.database)
    assert _diff(settings.database) == []
