"""Database engines: one writer connection per process plus a pool of readers.

SQLite: WAL, ``busy_timeout``, ``synchronous`` as configured, and every write transaction opened
with ``BEGIN IMMEDIATE`` (a deferred transaction that upgrades to a write gets SQLITE_BUSY at
once and never waits; spec/job-queue.md §2). One writer connection, behind an asyncio lock,
serialises this process's writes in asyncio instead of in SQLite's sleep-and-retry busy handler.
Never combine this with ``isolation_level="AUTOCOMMIT"``: the BEGIN from the hook would never be
committed.

Why SQLite connections live on threads here, not behind aiosqlite: SQLAlchemy's aiosqlite
adapter costs three to four hops to aiosqlite's connection thread per statement (cursor,
execute, fetch, close) plus greenlet switches, which bench/dbpath.py measured at 21 hops and
about 8 ms of CPU for one submission. Instead each SQLite connection is a synchronous SQLAlchemy
connection owned by an executor thread; ``ThreadedConnection`` runs each statement there in one
hop and hands back buffered rows, and commits (the fsync) never block the event loop. Callers
see the same ``async with db.write() as conn: await conn.execute(...)`` on both databases.

PostgreSQL: asyncpg through SQLAlchemy's async engine (asyncpg is natively asynchronous); the
claim statement adds ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError, NoResultFound, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

READER_POOL_SIZE = 4  # concurrent read transactions (and reader threads) per process
PG_POOL_SIZE = 5
T = TypeVar("T")


class DatabaseBusy(Exception):
    """The database stayed locked longer than the busy timeout; try again shortly."""


def is_busy_error(exc: BaseException) -> bool:
    """True for SQLite's 'database is locked' / 'busy' errors, however they are wrapped."""
    orig = getattr(exc, "orig", exc)
    text = str(orig).lower()
    return isinstance(orig, sqlite3.OperationalError | OperationalError | DBAPIError) and (
        "locked" in text or "busy" in text
    )


@contextmanager
def _busy_as_database_busy() -> Iterator[None]:
    """Translate the driver's "database is locked" once, at this boundary."""
    try:
        yield
    except OperationalError as exc:
        if is_busy_error(exc):
            raise DatabaseBusy(str(exc.orig)) from exc
        raise


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases."""
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    return Path(parsed.database or ":memory:")


class BufferedResult:
    """The rows and row count of one statement, fetched on the connection's thread."""

    def __init__(self, rows: list[Row[Any]], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Row[Any]]:
        return iter(self.rows)

    def all(self) -> Sequence[Row[Any]]:
        return self.rows

    def first(self) -> Row[Any] | None:
        return self.rows[0] if self.rows else None

    def one(self) -> Row[Any]:
        if len(self.rows) != 1:
            raise NoResultFound(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> _Scalars:
        return _Scalars(row[0] for row in self.rows)


class _Scalars(list[Any]):
    """First-column values; ``.all()`` as on SQLAlchemy's ScalarResult."""

    def all(self) -> list[Any]:
        return list(self)


def _buffered(result: sa.CursorResult[Any]) -> BufferedResult:
    rows = list(result.all()) if result.returns_rows else []
    return BufferedResult(rows, result.rowcount)


class ThreadedConnection:
    """An async face for a synchronous connection owned by one executor: one hop per statement."""

    def __init__(self, conn: Connection, executor: ThreadPoolExecutor) -> None:
        self.sync = conn
        self.executor = executor

    @property
    def dialect(self) -> sa.Dialect:
        return self.sync.dialect

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def execute(self, statement: sa.Executable, params: Any = None) -> BufferedResult:
        return await self._call(lambda: _buffered(self.sync.execute(statement, params)))

    async def exec_driver_sql(self, sql: str, params: Any = None) -> BufferedResult:
        return await self._call(lambda: _buffered(self.sync.exec_driver_sql(sql, params)))

    async def scalar(self, statement: sa.Executable, params: Any = None) -> Any:
        return await self._call(lambda: self.sync.scalar(statement, params))

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(sync_connection, *args)`` on the connection's thread: one hop in all."""
        return await self._call(fn, self.sync, *args)


def _begin(engine: Engine) -> Connection:
    conn = engine.connect()
    try:
        conn.begin()  # the begin hook sends BEGIN IMMEDIATE (writer) or BEGIN (readers)
    except BaseException:
        conn.close()
        raise
    return conn


def _end(conn: Connection, commit: bool) -> None:
    try:
        if commit:
            conn.commit()
        else:
            conn.rollback()
    finally:
        conn.close()


def _whole_transaction(engine: Engine, fn: Callable[[Connection], T], commit: bool) -> T:
    conn = _begin(engine)
    try:
        result = fn(conn)
    except BaseException:
        _end(conn, False)
        raise
    _end(conn, commit)
    return result


@dataclass
class _ThreadedEngine:
    """A synchronous SQLite engine whose connections are only used on ``executor``'s threads,
    with at most ``slots`` transactions open at once so a pool checkout never blocks a thread."""

    engine: Engine
    executor: ThreadPoolExecutor
    slots: int
    _guards: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = field(default_factory=dict)
    _disposed: bool = False

    def _guard(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        guard = self._guards.get(loop)
        if guard is None:
            guard = self._guards[loop] = asyncio.Semaphore(self.slots)
        return guard

    @asynccontextmanager
    async def transaction(self, *, commit: bool) -> AsyncIterator[ThreadedConnection]:
        loop = asyncio.get_running_loop()
        async with self._guard():
            opening = loop.run_in_executor(self.executor, _begin, self.engine)
            try:
                conn = await asyncio.shield(opening)
            except asyncio.CancelledError:
                opening.add_done_callback(self._close_when_opened)
                raise
            try:
                yield ThreadedConnection(conn, self.executor)
            except BaseException:
                await asyncio.shield(loop.run_in_executor(self.executor, _end, conn, False))
                raise
            await asyncio.shield(loop.run_in_executor(self.executor, _end, conn, commit))

    async def run(self, fn: Callable[[Connection], T], *, commit: bool) -> T:
        """A whole transaction as one call on the thread: the lock is held only while SQL runs."""
        async with self._guard():
            return await asyncio.get_running_loop().run_in_executor(
                self.executor, _whole_transaction, self.engine, fn, commit
            )

    def _close_when_opened(self, opening: asyncio.Future[Connection]) -> None:
        """A transaction whose opener was cancelled: roll it back once it exists."""
        if not opening.cancelled() and opening.exception() is None:
            self.executor.submit(_end, opening.result(), False)

    async def dispose(self) -> None:
        """Close the pooled connections on their thread; calling it twice is harmless."""
        if self._disposed:
            return
        self._disposed = True
        done: Future[None] = self.executor.submit(self.engine.dispose)
        await asyncio.wrap_future(done)
        self.executor.shutdown(wait=False)


@dataclass
class Database:
    """The engines of one process; ``write()`` and ``read()`` hand out transactions."""

    url: str
    dialect: str
    _sqlite_writer: _ThreadedEngine | None = None
    _sqlite_reader: _ThreadedEngine | None = None
    _pg_writer: AsyncEngine | None = None
    _pg_reader: AsyncEngine | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def file(self) -> Path | None:
        return sqlite_path(self.url)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        """A write transaction across awaits, one hop per statement (tests and ad-hoc use).
        songqueue's own writes go through ``run_write``: one hop, the lock held only while SQL
        runs."""
        with _busy_as_database_busy():
            if self._sqlite_writer is not None:
                async with self._sqlite_writer.transaction(commit=True) as conn:
                    yield conn
            else:
                assert self._pg_writer is not None
                async with self._pg_writer.begin() as pg_conn:
                    yield pg_conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        """A read-only snapshot."""
        with _busy_as_database_busy():
            if self._sqlite_reader is not None:
                async with self._sqlite_reader.transaction(commit=False) as conn:
                    yield conn
            else:
                assert self._pg_reader is not None
                async with self._pg_reader.connect() as pg_conn:
                    yield pg_conn

    async def run_write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` as one write transaction, in a single hop to the writer's
        thread. Hot paths use this: under load the event loop is slow to come back between
        statements, and a transaction that waits for it holds SQLite's write lock meanwhile."""
        with _busy_as_database_busy():
            if self._sqlite_writer is not None:
                return await self._sqlite_writer.run(fn, commit=True)
            assert self._pg_writer is not None
            async with self._pg_writer.begin() as conn:
                return await conn.run_sync(fn)

    async def run_read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in one read snapshot, in a single hop."""
        with _busy_as_database_busy():
            if self._sqlite_reader is not None:
                return await self._sqlite_reader.run(fn, commit=False)
            assert self._pg_reader is not None
            async with self._pg_reader.connect() as conn:
                return await conn.run_sync(fn)

    async def dispose(self) -> None:
        for threaded in (self._sqlite_writer, self._sqlite_reader):
            if threaded is not None:
                await threaded.dispose()
        for engine in (self._pg_writer, self._pg_reader):
            if engine is not None:
                await engine.dispose()


def _sqlite_hooks(engine: Engine, *, begin: str, busy_timeout_ms: int, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Take BEGIN out of the driver's hands so that our begin hook decides its kind.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql(begin)


def open_database(url: str, *, busy_timeout_ms: int = 5000, synchronous: str = "FULL") -> Database:
    """Create the writer and reader engines for ``url`` (no connection is opened yet)."""
    path = sqlite_path(url)
    if path is None:
        writer = create_async_engine(url, pool_size=PG_POOL_SIZE, pool_pre_ping=True)
        reader = create_async_engine(url, pool_size=PG_POOL_SIZE, pool_pre_ping=True)
        return Database(url, writer.dialect.name, _pg_writer=writer, _pg_reader=reader)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    sync_url = sa.engine.make_url(url).set(drivername="sqlite")
    # Connections move between the threads of their executor, never used by two at once.
    connect_args = {"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
    writer = sa.create_engine(
        sync_url, pool_size=1, max_overflow=0, pool_timeout=60, connect_args=connect_args
    )
    reader = sa.create_engine(
        sync_url, pool_size=READER_POOL_SIZE, max_overflow=0, connect_args=connect_args
    )
    _sqlite_hooks(
        writer, begin="BEGIN IMMEDIATE", busy_timeout_ms=busy_timeout_ms, synchronous=synchronous
    )
    _sqlite_hooks(reader, begin="BEGIN", busy_timeout_ms=busy_timeout_ms, synchronous=synchronous)
    return Database(
        url,
        "sqlite",
        _sqlite_writer=_ThreadedEngine(
            writer, ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer"), slots=1
        ),
        _sqlite_reader=_ThreadedEngine(
            reader,
            ThreadPoolExecutor(READER_POOL_SIZE, thread_name_prefix="sqlite-reader"),
            slots=READER_POOL_SIZE,
        ),
    )
