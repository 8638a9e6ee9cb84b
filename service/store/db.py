"""Database engines: one writer connection per process plus a pool of readers.

SQLite: WAL, ``busy_timeout``, ``synchronous`` as configured, and every write transaction opened
with ``BEGIN IMMEDIATE`` (a deferred transaction that upgrades to a write gets SQLITE_BUSY at
once and never waits; spec/job-queue.md §2). One writer connection serialises this process's
writes in asyncio instead of in SQLite's sleep-and-retry busy handler. Never combine this with
``isolation_level="AUTOCOMMIT"``: the BEGIN from the hook would never be committed.

PostgreSQL: plain pools; the claim statement adds ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

READER_POOL_SIZE = 4
PG_POOL_SIZE = 5


class DatabaseBusy(Exception):
    """The database stayed locked longer than the busy timeout; try again shortly."""


def is_busy_error(exc: BaseException) -> bool:
    """True for SQLite's 'database is locked' / 'busy' errors, however they are wrapped."""
    orig = getattr(exc, "orig", exc)
    text = str(orig).lower()
    return isinstance(orig, sqlite3.OperationalError | OperationalError | DBAPIError) and (
        "locked" in text or "busy" in text
    )


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases."""
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    return Path(parsed.database or ":memory:")


@contextmanager
def _busy_as_database_busy() -> Iterator[None]:
    """Translate the driver's "database is locked" once, at this boundary."""
    try:
        yield
    except OperationalError as exc:
        if is_busy_error(exc):
            raise DatabaseBusy(str(exc.orig)) from exc
        raise


@dataclass
class Database:
    """The engines of one process; ``write()`` and ``read()`` hand out transactions."""

    url: str
    writer: AsyncEngine
    reader: AsyncEngine

    @property
    def is_sqlite(self) -> bool:
        return self.writer.dialect.name == "sqlite"

    @property
    def file(self) -> Path | None:
        return sqlite_path(self.url)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A short write transaction. Put only SQL inside: no awaits on other work."""
        with _busy_as_database_busy():
            async with self.writer.begin() as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot."""
        with _busy_as_database_busy():
            async with self.reader.connect() as conn:
                yield conn

    async def dispose(self) -> None:
        await self.writer.dispose()
        await self.reader.dispose()


def _sqlite_hooks(
    engine: AsyncEngine, *, begin: str, busy_timeout_ms: int, synchronous: str
) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Take BEGIN out of the driver's hands so that our begin hook decides its kind.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql(begin)


def open_database(url: str, *, busy_timeout_ms: int = 5000, synchronous: str = "FULL") -> Database:
    """Create the writer and reader engines for ``url`` (no connection is opened yet)."""
    path = sqlite_path(url)
    if path is None:
        writer = create_async_engine(url, pool_size=PG_POOL_SIZE, pool_pre_ping=True)
        reader = create_async_engine(url, pool_size=PG_POOL_SIZE, pool_pre_ping=True)
        return Database(url, writer, reader)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    timeout_s = busy_timeout_ms / 1000
    writer = create_async_engine(
        url, pool_size=1, max_overflow=0, pool_timeout=60, connect_args={"timeout": timeout_s}
    )
    reader = create_async_engine(
        url, pool_size=READER_POOL_SIZE, max_overflow=4, connect_args={"timeout": timeout_s}
    )
    _sqlite_hooks(
        writer, begin="BEGIN IMMEDIATE", busy_timeout_ms=busy_timeout_ms, synchronous=synchronous
    )
    _sqlite_hooks(reader, begin="BEGIN", busy_timeout_ms=busy_timeout_ms, synchronous=synchronous)
    return Database(url, writer, reader)
