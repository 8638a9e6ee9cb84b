"""Retention: finished jobs and their files go away after ``settings.retention_hours``.

Oban's ``pruner.ex`` shape: ``sweep_retention`` runs once and returns counts (tests call it
directly, with ``now``); ``retention_loop`` only calls it every few minutes from the API
lifespan. It never blocks requests: rows leave in batches of at most ``BATCH_SIZE`` per short
write transaction, and files are deleted in a thread after each transaction commits.

Files of a job: its output folder ``<outputs>/<job_id>/`` and the uploads it was given (only
files inside the uploads directory: a source named by path, such as another job's output,
is never deleted with this job). An output folder whose job row is gone (a job deleted while
its worker was still writing) is swept too, once it is older than the cut-off.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from service.config import Settings
from service.files import job_output_dir, remove_paths
from service.schemas import Job
from service.storage import S3Store, open_object_store
from service.store import queue
from service.store.db import Database

log = logging.getLogger(__name__)

BATCH_SIZE = 1000  # rows per write transaction
INTERVAL_SECONDS = 300.0  # between sweeps in the API process
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class RetentionResult:
    jobs: int  # job rows removed
    paths: int  # files and folders removed (outputs and uploads)
    orphans: int  # output folders removed whose job row was already gone


def job_paths(settings: Settings, job: Job) -> list[Path]:
    """Everything on disk that belongs to ``job`` alone."""
    paths = [job_output_dir(settings, job.job_id)]
    uploads = Path(os.path.realpath(settings.uploads_dir))
    for raw in (job.request.src_audio_path, job.request.reference_audio_path):
        if raw and Path(os.path.realpath(raw)).parent == uploads:
            paths.append(Path(raw))
    return paths


def _remove_existing(paths: list[Path]) -> int:
    present = [p for p in paths if p.exists()]
    remove_paths(present)
    return len(present)


async def remove_job_files(
    settings: Settings, jobs: list[Job], store: S3Store | None = None
) -> int:
    """Delete the jobs' files (and their objects, with a shared store) in a worker thread,
    so the event loop keeps serving."""
    paths = [p for job in jobs for p in job_paths(settings, job)]
    if store is not None and jobs:
        await asyncio.to_thread(_remove_objects, store, jobs)
    return await asyncio.to_thread(_remove_existing, paths) if paths else 0


def _remove_objects(store: S3Store, jobs: list[Job]) -> None:
    for job in jobs:
        store.delete_prefix(store.output_key(f"{job.job_id}/"))
        for key in (job.request.src_audio_key, job.request.reference_audio_key):
            if key:
                store.delete_prefix(key)


def _old_output_dirs(outputs: Path, cutoff: float) -> list[str]:
    if not outputs.is_dir():
        return []
    names = []
    with os.scandir(outputs) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                names.append(entry.name)
    return names


async def sweep_orphans(db: Database, settings: Settings, cutoff: float) -> int:
    """Output folders older than ``cutoff`` with no job row left."""
    names = await asyncio.to_thread(_old_output_dirs, settings.outputs_dir, cutoff)
    removed = 0
    for start in range(0, len(names), BATCH_SIZE):
        batch = names[start : start + BATCH_SIZE]
        alive = await queue.existing_job_ids(db, batch)
        gone = [settings.outputs_dir / n for n in batch if n not in alive]
        removed += await asyncio.to_thread(_remove_existing, gone)
    return removed


async def sweep_retention(
    db: Database, settings: Settings, now: float | None = None, store: S3Store | None = None
) -> RetentionResult:
    """Remove finished jobs older than ``retention_hours`` and their files; 0 hours keeps all."""
    if settings.retention_hours <= 0:
        return RetentionResult(0, 0, 0)
    now = time.time() if now is None else now
    cutoff = now - settings.retention_hours * SECONDS_PER_HOUR
    removed_jobs = removed_paths = 0
    while True:
        batch = await queue.delete_finished_before(db, cutoff, limit=BATCH_SIZE)
        removed_jobs += len(batch)
        removed_paths += await remove_job_files(settings, batch, store)
        if len(batch) < BATCH_SIZE:
            break
        await asyncio.sleep(0)  # let requests waiting on the writer go first
    orphans = await sweep_orphans(db, settings, cutoff)
    return RetentionResult(removed_jobs, removed_paths, orphans)


async def retention_loop(
    db: Database, settings: Settings, *, interval: float = INTERVAL_SECONDS
) -> None:
    """Sweep now and then every ``interval`` seconds until cancelled; a failed sweep is logged
    and retried next time (the database may be busy or not migrated yet)."""
    store = open_object_store(settings)
    while True:
        try:
            result = await sweep_retention(db, settings, store=store)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("retention sweep failed: %s", exc)
        else:
            if result.jobs or result.orphans:
                log.info(
                    "retention: removed %d job(s), %d path(s), %d orphaned folder(s)",
                    result.jobs,
                    result.paths,
                    result.orphans,
                )
        await asyncio.sleep(interval)
