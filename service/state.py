"""What every route needs, built once per API process and kept on ``app.state``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from starlette.requests import Request

from service.config import Settings
from service.requests import Body, build_submission
from service.schemas import RUNNABLE_TASKS, Job
from service.store import queue
from service.store.db import Database
from service.store.eta import EtaCache

IDEMPOTENCY_HEADER = "idempotency-key"


@dataclass
class AppState:
    settings: Settings
    db: Database
    etas: EtaCache

    async def submit(self, body: Body, *, api: str, request: Request | None = None) -> Job:
        """Validate, store uploads and enqueue one job; nothing is left behind on refusal."""
        submission = await build_submission(body, self.settings)
        key = request.headers.get(IDEMPOTENCY_HEADER) if request is not None else None
        req = submission.request
        unsupported = req.task_type not in RUNNABLE_TASKS
        try:
            enqueued = await queue.enqueue(
                self.db,
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
        except BaseException:
            for path in submission.saved_files:
                path.unlink(missing_ok=True)
            raise
        if not enqueued.created or unsupported:  # no worker will ever read these uploads
            for path in submission.saved_files:
                path.unlink(missing_ok=True)
        return enqueued.job


def app_state(request: Request) -> AppState:
    return request.app.state.songqueue
