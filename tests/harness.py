"""In-process servers for API tests: a ``Worker`` on its own event loop in a thread, and
polling with a deadline (never a fixed sleep). Shared by tests/api and tests/diffrhythm_api."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from models.engine import Engine
from service.app import create_app
from service.config import Settings, load_settings
from service.store.db import open_database
from service.store.migrate import upgrade
from tests.processes import free_port

START_TIMEOUT = 20.0  # seconds for uvicorn and the worker to come up
POLL_INTERVAL = 0.05  # seconds between polls


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_INTERVAL)


class WorkerThread:
    """``service.worker.Worker`` with ``engine`` (default: synth), on its own loop in a thread."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker: Any = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sq-worker", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        from models.synth import SynthEngine
        from service.worker import Worker

        db = open_database(self.settings.database, busy_timeout_ms=self.settings.busy_timeout_ms)
        self.loop = asyncio.get_running_loop()
        self.worker = Worker(self.settings, db, self.engine or SynthEngine())
        self.ready.set()
        try:
            await self.worker.run()
        finally:
            await db.dispose()

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(START_TIMEOUT), "worker did not start"

    def stop(self) -> None:
        if self.loop is not None and self.worker is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(START_TIMEOUT)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def serving(home: Path, **overrides: Any) -> Iterator[tuple[Settings, str]]:
    """Migrate a fresh database in ``home`` and serve the app with uvicorn in a thread;
    yields the settings and the base URL, and stops the server afterwards."""
    port = free_port()
    settings = load_settings(
        environ={}, env_file=None, home=str(home), port=port, engine="synth", **overrides
    )
    upgrade(settings.database)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sq-api", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, START_TIMEOUT, "uvicorn to start")
        yield settings, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
