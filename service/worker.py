"""The worker: claim -> engine -> encode -> complete, one job at a time, with leases.

Loop shape (procrastinate's): named side tasks (heartbeat) watched so that one dying stops the
worker; ``stop()`` only sets an event; the idle wait is "the database changed, or the claim
interval passed, or stop". The engine runs in a thread and reports each step through a
callback that renews the lease and raises at the next step when the job was cancelled, the
lease was lost, or the worker is stopping (then the job goes back to the queue untouched).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import sqlalchemy as sa

from models.audio import decode_audio, fit_length, resample, to_channels, write_audio
from models.engine import Audio, Engine, EngineInputError, GenerationSpec, Track, run_task
from service.config import Settings
from service.errors import JobCancelled, LeaseLost, WorkerStopping
from service.files import job_output_dir
from service.schemas import GenerationRequest, JobResult, ResultFile
from service.storage import S3Store, open_object_store
from service.store import queue
from service.store.db import Database, DatabaseBusy
from service.store.eta import TimingSample, record_sample
from service.store.queue import NEW_JOB_CHANNEL

log = logging.getLogger(__name__)

WAKE_POLL_INTERVAL = 0.05  # seconds between PRAGMA data_version checks while idle
CLAIM_INTERVAL = 1.0  # seconds: claim at least this often (retries whose back-off ended)
SWEEP_INTERVAL = 1.0  # seconds between expired-lease sweeps
HEARTBEAT_INTERVAL = 5.0  # seconds between worker heartbeats
PROGRESS_WRITE_INTERVAL = 0.5  # seconds: at most two progress writes per second
BUSY_RETRY_DELAY = 0.2  # seconds to wait after the database was locked


@dataclass
class WorkerEvents:
    """Test signals instead of sleeps: each event is set when the thing happens."""

    claimed: asyncio.Event = field(default_factory=asyncio.Event)
    step: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class StepReporter:
    """The engine's step callback, called from the engine thread."""

    def __init__(self, worker: Worker, claimed: queue.Claimed, total: int) -> None:
        self.worker = worker
        self.claimed = claimed
        self.total = total
        self.loop = asyncio.get_running_loop()
        self.started = time.perf_counter()
        self.last_step = self.started
        self.steps = 0
        self._last_write = 0.0

    def __call__(self, done: int, total: int) -> None:
        self.steps = done
        self.last_step = time.perf_counter()
        if self.worker.stopping:
            raise WorkerStopping()
        self.loop.call_soon_threadsafe(self.worker.events.step.set)
        if done >= total or self.last_step - self._last_write < PROGRESS_WRITE_INTERVAL:
            return  # the last step is recorded by the "encoding" write that follows it
        self._last_write = self.last_step
        try:
            cancel = asyncio.run_coroutine_threadsafe(
                self.worker.renew(self.claimed, done, total, "generating"), self.loop
            ).result()
        except DatabaseBusy:
            log.warning("progress write skipped: database busy (the lease still holds)")
            return
        if cancel:
            raise JobCancelled()


class Worker:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        engine: Engine,
        *,
        worker_id: str | None = None,
        run_until_empty: bool = False,
        store: S3Store | None = None,
    ) -> None:
        self.settings = settings
        self.store = store if store is not None else open_object_store(settings)
        self.db = db
        self.engine = engine
        self.worker_id = worker_id or default_worker_id()
        self.run_until_empty = run_until_empty
        self.events = WorkerEvents()
        self._stop = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._last_sweep = 0.0

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the worker to stop; a running job stops at its next step and is requeued."""
        self._stop.set()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        await queue.register_worker(
            self.db,
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            engine=self.engine.name,
            model_name=self.engine.model_name,
        )
        log.info("worker %s ready (engine %s)", self.worker_id, self.engine.model_name)
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
        heartbeat.add_done_callback(self._side_task_done)
        try:
            async with self._watcher() as changed:
                while not self.stopping:
                    try:
                        await self._sweep_if_due()
                        claimed = await queue.claim(
                            self.db,
                            worker_id=self.worker_id,
                            engine=self.engine.name,
                            lease_seconds=self.settings.lease_seconds,
                        )
                    except DatabaseBusy:
                        await asyncio.sleep(BUSY_RETRY_DELAY)
                        continue
                    if claimed is not None:
                        self.events.claimed.set()
                        await self.process(claimed)
                        continue
                    if self.run_until_empty:
                        break
                    await self._wait_for_work(changed)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await queue.unregister_worker(self.db, self.worker_id)
            self._executor.shutdown(wait=False)
            log.info("worker %s stopped", self.worker_id)

    def _side_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("side task %s died: %r; stopping", task.get_name(), task.exception())
            self.stop()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            try:
                await queue.heartbeat(self.db, self.worker_id)
            except DatabaseBusy:
                log.warning("heartbeat skipped: database busy")

    async def _sweep_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_INTERVAL:
            return
        self._last_sweep = now
        swept = await queue.sweep_expired_leases(self.db)
        if swept.requeued or swept.failed:
            log.warning("expired leases: %d requeued, %d failed", swept.requeued, swept.failed)

    def _watcher(self) -> _ChangeWatcher | _NotifyWatcher:
        if self.db.is_sqlite:
            return _ChangeWatcher(self.db.file)
        return _NotifyWatcher(self.db.url)

    async def _wait_for_work(self, changed: Callable[[], object]) -> None:
        """Return when the database changed, CLAIM_INTERVAL passed, or stop() was called."""
        deadline = time.monotonic() + CLAIM_INTERVAL
        while not self.stopping and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), WAKE_POLL_INTERVAL)
            if await changed():  # type: ignore[misc]
                return

    # --- one job ----------------------------------------------------------------------------

    async def renew(self, claimed: queue.Claimed, done: int, total: int, stage: str) -> bool:
        return await queue.renew(
            self.db,
            claimed,
            lease_seconds=self.settings.lease_seconds,
            steps_done=done,
            steps_total=total,
            stage=stage,
        )

    async def process(self, claimed: queue.Claimed) -> None:
        job = claimed.job
        log.info("job %s claimed (%s, attempt %d)", job.job_id, job.task_type, job.attempts)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            spec = await loop.run_in_executor(
                self._executor, build_spec, job.request, self.engine, self.store
            )
            total = self.engine.total_steps(spec)
            if await self.renew(claimed, 0, total, "generating"):
                raise JobCancelled()
            reporter = StepReporter(self, claimed, total)
            tracks = await loop.run_in_executor(
                self._executor, run_task, self.engine, spec, reporter
            )
            steps_seconds = reporter.last_step - reporter.started
            if await self.renew(claimed, total, total, "encoding"):
                raise JobCancelled()
            files = await loop.run_in_executor(
                self._executor,
                write_tracks,
                self.settings,
                job.job_id,
                job.request,
                tracks,
                self.store,
            )
            seconds = time.perf_counter() - started
            result = JobResult(
                files=files,
                engine=self.engine.name,
                model_name=self.engine.model_name,
                metas=dict(tracks[0].metas) if tracks else {},
                generation_info=generation_info(job.request, self.engine, seconds),
                seconds=round(seconds, 3),
            )
            sample = TimingSample(
                engine=self.engine.name,
                task_type=job.task_type,
                duration=job.duration,
                batch_size=job.batch_size,
                steps=max(total, 1),
                step_seconds=steps_seconds / max(total, 1),
                overhead_seconds=max(seconds - steps_seconds, 0.0),
            )
            await while_busy(
                lambda: queue.complete(
                    self.db, claimed, result, after=lambda c: record_sample(c, sample)
                )
            )
            log.info("job %s succeeded in %.2f s", job.job_id, seconds)
        except JobCancelled:
            await while_busy(lambda: queue.finish_cancelled(self.db, claimed))
            log.info("job %s cancelled", job.job_id)
        except WorkerStopping:
            await while_busy(lambda: queue.release(self.db, claimed))
            log.info("job %s returned to the queue: worker stopping", job.job_id)
        except LeaseLost:
            log.warning("job %s: lease lost, abandoning it to its new owner", job.job_id)
        except EngineInputError as exc:
            await self._fail(claimed, str(exc), retryable=False)
        except Exception as exc:
            log.exception("job %s failed", job.job_id)
            text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
            await self._fail(claimed, text, retryable=True)
        finally:
            self.events.finished.set()

    async def _fail(self, claimed: queue.Claimed, error: str, *, retryable: bool) -> None:
        try:
            status = await while_busy(
                lambda: queue.fail(
                    self.db,
                    claimed,
                    error,
                    retryable=retryable,
                    backoff_base=self.settings.retry_backoff_seconds,
                )
            )
        except LeaseLost:
            return
        log.warning("job %s %s: %s", claimed.job.job_id, status, error.splitlines()[0])


T = TypeVar("T")
FINAL_WRITE_ATTEMPTS = 10  # a finished job's result is worth waiting for a busy database


async def while_busy(write: Callable[[], Awaitable[T]]) -> T:
    """Retry a job's final write while the database is busy, so a finished result is not lost
    to a lock held by another process; gives up (and leaves the lease to expire) eventually."""
    for attempt in range(1, FINAL_WRITE_ATTEMPTS + 1):
        try:
            return await write()
        except DatabaseBusy:
            if attempt == FINAL_WRITE_ATTEMPTS:
                raise
            log.warning("database busy; retrying the write (%d/%d)", attempt, FINAL_WRITE_ATTEMPTS)
            await asyncio.sleep(BUSY_RETRY_DELAY * attempt)
    raise AssertionError("unreachable")


class _ChangeWatcher:
    """Cheap wake-ups: SQLite's ``PRAGMA data_version`` changes when another connection commits."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.conn: aiosqlite.Connection | None = None
        self.version: int | None = None

    async def __aenter__(self) -> Callable[[], object]:
        if self.path is not None:
            self.conn = await aiosqlite.connect(self.path, isolation_level=None)
            self.version = await self._read()
        return self.changed

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def _read(self) -> int:
        assert self.conn is not None
        async with self.conn.execute("PRAGMA data_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def changed(self) -> bool:
        if self.conn is None:
            return False  # PostgreSQL: the claim interval is the fallback poll
        version = await self._read()
        if version != self.version:
            self.version = version
            return True
        return False


class _NotifyWatcher:
    """PostgreSQL: LISTEN on the new-job channel; the claim interval is the fallback poll."""

    def __init__(self, url: str) -> None:
        parsed = sa.engine.make_url(url).set(drivername="postgresql")
        self.dsn = parsed.render_as_string(hide_password=False)
        self.conn: Any = None  # asyncpg.Connection; asyncpg is the optional "postgres" extra
        self.event = asyncio.Event()

    async def __aenter__(self) -> Callable[[], object]:
        import asyncpg

        try:
            self.conn = await asyncpg.connect(self.dsn)
            await self.conn.add_listener(NEW_JOB_CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN unavailable (%s): polling every %.1f s", exc, CLAIM_INTERVAL)
            self.conn = None
        return self.changed

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()

    def _notified(self, *_args: object) -> None:
        self.event.set()

    async def changed(self) -> bool:
        if self.event.is_set():
            self.event.clear()
            return True
        return False


# --- pure helpers, run in the engine thread ---------------------------------------------------


def _load_source(
    path: str | None, key: str | None, sample_rate: int, store: S3Store | None
) -> Audio | None:
    """Decode a source: from this host's disk, or fetched from the object store."""
    if not path:
        return None
    local = Path(path)
    if not local.is_file() and key is not None and store is not None:
        with tempfile.TemporaryDirectory() as tmp:
            fetched = Path(tmp) / f"source{local.suffix}"
            if not store.download(key, fetched):
                raise EngineInputError(f"source audio {key!r} is missing from the object store")
            return to_channels(resample(decode_audio(fetched), sample_rate), 2)
    return to_channels(resample(decode_audio(local), sample_rate), 2)


def build_spec(
    request: GenerationRequest, engine: Engine, store: S3Store | None = None
) -> GenerationSpec:
    """The engine's view of a request: sources decoded, defaults resolved."""
    rate = engine.sample_rate
    source = _load_source(request.src_audio_path, request.src_audio_key, rate, store)
    reference = _load_source(request.reference_audio_path, request.reference_audio_key, rate, store)
    return GenerationSpec(
        task=request.task_type,  # type: ignore[arg-type]
        caption=request.prompt,
        lyrics=request.lyrics,
        duration=float(request.audio_duration or 30.0),
        bpm=request.bpm,
        key_scale=request.key_scale,
        time_signature=request.time_signature,
        vocal_language=request.vocal_language,
        seeds=tuple(request.seeds),
        inference_steps=request.inference_steps,
        guidance_scale=request.guidance_scale,
        source=source,
        reference=reference,
        repaint_start=request.repainting_start,
        repaint_end=request.repainting_end,
        cover_strength=request.audio_cover_strength,
    )


def write_tracks(
    settings: Settings,
    job_id: str,
    request: GenerationRequest,
    tracks: list[Track],
    store: S3Store | None = None,
) -> list[ResultFile]:
    """Encode every track; each file appears complete or not at all (temp name, then rename),
    and is in the object store, when there is one, before the job is reported done."""
    out_dir = job_output_dir(settings, job_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for index, track in enumerate(tracks):
        audio = track.audio
        if request.task_type == "text2music" and request.audio_duration:
            audio = fit_length(audio, round(request.audio_duration * audio.sample_rate))
        name = f"{index}-{track.seed}.{request.audio_format}"
        write_audio(audio, out_dir / name, request.audio_format)
        if store is not None:
            store.upload(out_dir / name, store.output_key(f"{job_id}/{name}"))
        files.append(
            ResultFile(
                path=f"{job_id}/{name}",
                format=request.audio_format,
                seed=track.seed,
                duration=round(audio.duration, 3),
                sample_rate=audio.sample_rate,
            )
        )
    return files


def generation_info(request: GenerationRequest, engine: Engine, seconds: float) -> str:
    lines = [
        f"**Engine:** {engine.model_name}",
        f"**Task:** {request.task_type}",
        f"**Time:** {seconds:.2f} s for {request.batch_size} track(s) "
        f"({seconds / max(request.batch_size, 1):.2f} s per track)",
        f"**Seeds:** {','.join(str(s) for s in request.seeds)}",
    ]
    lines += [f"**Note:** {note}" for note in request.notes]
    return "\n".join(lines)
