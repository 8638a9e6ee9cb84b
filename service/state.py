"""What every route needs, built once per API process and kept on ``app.state``."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request

from service.config import Settings
from service.errors import NotFound
from service.files import resolve_output
from service.requests import Body, build_submission
from service.schemas import RUNNABLE_TASKS, GenerationRequest, Job
from service.storage import S3Store
from service.store import queue
from service.store.batching import EnqueueBatcher
from service.store.db import Database
from service.store.eta import EtaCache

IDEMPOTENCY_HEADER = "idempotency-key"


@dataclass
class AppState:
    settings: Settings
    db: Database
    etas: EtaCache
    store: S3Store | None = None  # shared object storage across hosts (service/storage.py)
    batcher: EnqueueBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.batcher = EnqueueBatcher(self.db)

    async def output_file(self, raw_path: str) -> Path:
        """The local file behind a ``/v1/audio?path=`` value, fetched from the object store
        when a worker on another host wrote it."""
        try:
            return resolve_output(self.settings, raw_path)
        except NotFound:
            if self.store is None:
                raise
        outputs = Path(os.path.realpath(self.settings.outputs_dir))
        relative = Path(os.path.realpath(raw_path)).relative_to(outputs)  # checked just above
        key = self.store.output_key(relative.as_posix())
        if not await asyncio.to_thread(self.store.download, key, outputs / relative):
            raise NotFound("Audio file not found")
        return resolve_output(self.settings, raw_path)

    async def _share_sources(self, request: GenerationRequest) -> None:
        """With an object store, workers on other hosts read sources from it."""
        if self.store is None:
            return
        if request.src_audio_path:
            path = Path(request.src_audio_path)
            request.src_audio_key = await asyncio.to_thread(self.store.upload_input, path)
        if request.reference_audio_path:
            path = Path(request.reference_audio_path)
            request.reference_audio_key = await asyncio.to_thread(self.store.upload_input, path)

    async def submit(self, body: Body, *, api: str, request: Request | None = None) -> Job:
        """Validate, store uploads and enqueue one job; nothing is left behind on refusal."""
        job, _ = await self.submit_positioned(body, api=api, request=request)
        return job

    async def submit_positioned(
        self, body: Body, *, api: str, request: Request | None = None
    ) -> tuple[Job, int]:
        """``submit``, with the queue position read in the inserting transaction."""
        submission = await build_submission(body, self.settings)
        key = request.headers.get(IDEMPOTENCY_HEADER) if request is not None else None
        req = submission.request
        unsupported = req.task_type not in RUNNABLE_TASKS
        try:
            if not unsupported:
                await self._share_sources(req)
            enqueued = await self.batcher.enqueue(
                queue.NewJob(
                    job_id=str(uuid.uuid4()),
                    request=req,
                    duration=submission.duration,
                    api=api,
                    max_attempts=self.settings.max_attempts,
                    queue_maxsize=self.settings.queue_maxsize,
                    idempotency_key=key[:200] if key else None,
                    status="failed" if unsupported else "queued",
                    error=(
                        f"task_type {req.task_type!r} needs ACE-Step's base model "
                        "(track-level editing), which songqueue's engines do not have; "
                        "supported: text2music, cover, repaint"
                        if unsupported
                        else None
                    ),
                )
            )
        except BaseException:
            for path in submission.saved_files:
                path.unlink(missing_ok=True)
            raise
        if not enqueued.created or unsupported:  # no worker will ever read these uploads
            for path in submission.saved_files:
                path.unlink(missing_ok=True)
        return enqueued.job, enqueued.position


def app_state(request: Request) -> AppState:
    return request.app.state.songqueue
