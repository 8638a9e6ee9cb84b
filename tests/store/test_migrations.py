"""Alembic builds exactly the schema that ``tables.py`` declares, keeps rows, and round-trips."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from service.config import Settings
from service.store import queue
from service.store.db import Database, open_database
from service.store.migrate import downgrade, upgrade
from service.store.tables import metadata
from tests.conftest import submit

EXPRESSION_INDEX = "ix_jobs_claim"  # (status, priority DESC, id): alembic cannot compare it
INDEX_DDL = {
    "sqlite": "SELECT sql FROM sqlite_master WHERE name = :name",
    "postgresql": "SELECT indexdef FROM pg_indexes WHERE indexname = :name",
}


async def schema_diff(url: str) -> list[object]:
    """Schema differences, with the expression index checked by its DDL instead."""
    engine = create_async_engine(url, poolclass=sa.pool.NullPool)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
        ddl = await conn.scalar(sa.text(INDEX_DDL[conn.dialect.name]), {"name": EXPRESSION_INDEX})
    await engine.dispose()
    assert ddl is not None and "priority DESC" in ddl
    return [d for d in diff if EXPRESSION_INDEX not in repr(d)]


async def test_upgrade_head_matches_tables(db: Database, settings: Settings) -> None:
    assert await schema_diff(settings.database) == []


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
    assert await schema_diff(settings.database) == []
