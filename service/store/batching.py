"""Group commit for submissions: concurrent enqueues share one write transaction.

With ``synchronous=FULL`` every SQLite commit waits for an fsync (about 3 ms on the disks
songqueue was measured on), and the one writer connection per process serialises commits, so
one transaction per submission caps an API process at a few hundred submissions per second.
Here a single task owns the writes: submissions that arrive while a commit is in flight wait
in a list and go into the next transaction together (at most ``MAX_BATCH``). A lone
submission is written at once: no timer, no added latency. Each caller is answered only after
the commit that holds its row, so an acknowledged job is still a durable job.
"""

from __future__ import annotations

import asyncio
import logging

from service.store.db import Database
from service.store.queue import Enqueued, NewJob, enqueue_many

log = logging.getLogger(__name__)

MAX_BATCH = 64  # rows per transaction: keeps each write transaction short


class EnqueueBatcher:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[NewJob, asyncio.Future[Enqueued]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def enqueue(self, new: NewJob) -> Enqueued:
        future: asyncio.Future[Enqueued] = asyncio.get_running_loop().create_future()
        self._pending.append((new, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="enqueue-batcher")
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write(batch)

    async def _write(self, batch: list[tuple[NewJob, asyncio.Future[Enqueued]]]) -> None:
        try:
            outcomes = await enqueue_many(self.db, [new for new, _ in batch])
        except Exception as exc:  # the whole transaction failed (busy, disk): tell everyone
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the client went away; its row is committed all the same
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
