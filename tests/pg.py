"""PostgreSQL for tests: one migrated template database per session, a fresh copy per test.

Tests that take the ``backend`` fixture run on SQLite and on the PostgreSQL at
``SONGQUEUE_TEST_PG_URL`` (default: the local server's ``test`` database); they skip with a
clear message where no server answers.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import sqlalchemy as sa

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_URL = os.environ.get("SONGQUEUE_TEST_PG_URL", DEFAULT_PG_URL)


def _dsn(url: str) -> str:
    return (
        sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def database_url(name: str) -> str:
    return sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(PG_URL), timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def admin(sql: str) -> None:
    """Run one statement on the maintenance database (works inside or outside an event loop)."""
    if _loop_running():
        _in_thread(sql)
    else:
        asyncio.run(_admin(sql))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_thread(sql: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(_admin(sql))).result()


def unavailable_reason() -> str | None:
    """None when the server answers, else why PostgreSQL tests are skipped."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed (pip install -e '.[postgres]')"
    try:
        admin("SELECT 1")
    except Exception as exc:
        return f"no PostgreSQL at {PG_URL} ({type(exc).__name__}: {exc}); set SONGQUEUE_TEST_PG_URL"
    return None


def new_name(prefix: str = "sq_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
