"""``POST /v1/jobs/{job_id}/cancel``: stop a job, answered in the era A job shape.

A queued job is cancelled at once; a running one stops at its next engine step (the worker
sees ``cancel_requested`` when it renews its lease). Finished jobs are left as they are, so
cancelling twice, or too late, is harmless and still answers the job.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.auth import require_header
from service.render import era_a_job
from service.state import app_state
from service.store import queue

log = logging.getLogger(__name__)


async def cancel_job(request: Request) -> Response:
    state = app_state(request)
    require_header(state.settings, request)
    job = await queue.cancel(state.db, request.path_params["job_id"])
    log.info("job %s cancel requested (now %s)", job.job_id, job.status)
    snapshot = await state.etas.snapshot()
    eta = await state.etas.eta(job.job_id) if job.status == "running" else None
    return JSONResponse(
        era_a_job(
            state.settings, job, position=0, eta=eta, avg_job_seconds=snapshot.avg_job_seconds
        )
    )


routes = [Route("/v1/jobs/{job_id}/cancel", cancel_job, methods=["POST"])]
