"""ACE-Step era C task routes (spec/acestep-api.md §4, §5): ``/release_task`` and
``/query_result``, wrapped in ACE-Step's envelope, with integer statuses."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.auth import require_token
from service.render import era_c_entry, era_c_unknown, wrap
from service.requests import read_body, task_ids
from service.state import app_state
from service.store import queue


async def release_task(request: Request) -> Response:
    """Create a job: wrapped ``{task_id, status, queue_position}`` (1-based, 1 when idle)."""
    state = app_state(request)
    body = await read_body(request, state.settings)
    require_token(state.settings, request, body.fields)
    job, position = await state.submit_positioned(body, api="acestep", request=request)
    return JSONResponse(
        wrap({"task_id": job.job_id, "status": job.status, "queue_position": position})
    )


async def query_result(request: Request) -> Response:
    """Status and results of several tasks, in request order; unknown ids read as waiting."""
    state = app_state(request)
    body = await read_body(request, state.settings, allow_empty=True)
    require_token(state.settings, request, body.fields)
    ids = task_ids(body.fields)
    found = await queue.get_jobs_with_positions(state.db, ids)
    entries = []
    for task_id in ids:
        if task_id not in found:
            entries.append(era_c_unknown(task_id))
            continue
        job, position = found[task_id]
        eta = None
        if job.status in ("queued", "running"):
            eta = await state.etas.eta(job.job_id)
        entries.append(era_c_entry(state.settings, job, position=position, eta=eta))
    return JSONResponse(wrap(entries))


routes = [
    Route("/release_task", release_task, methods=["POST"]),
    Route("/query_result", query_result, methods=["POST"]),
]
