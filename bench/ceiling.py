"""The ceiling for submissions: a bare Starlette endpoint on the same uvicorn settings.

``POST /release_task`` parses the JSON body and answers the same enveloped JSON songqueue does
(``{task_id, status, queue_position}``), but touches no database. What songqueue reaches of this
server's requests/s is the share the queue itself leaves.

    python bench/ceiling.py --port 8123
"""

from __future__ import annotations

import argparse
import itertools
import time

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_ids = itertools.count(1)


async def release_task(request: Request) -> Response:
    """Decode the body as songqueue does (msgspec), answer in ACE-Step's envelope."""
    msgspec.json.decode(await request.body())
    data = {"task_id": f"{next(_ids):032x}", "status": "queued", "queue_position": 1}
    return JSONResponse(
        {"data": data, "code": 200, "error": None, "timestamp": int(time.time() * 1000),
         "extra": None}
    )  # fmt: skip


async def job(request: Request) -> Response:
    """A status poll's shape (``GET /v1/jobs/{id}``) from a constant: no database."""
    return JSONResponse(
        {"job_id": request.path_params["job_id"], "status": "queued", "created_at": time.time(),
         "started_at": None, "finished_at": None, "queue_position": 1, "eta_seconds": 1.0,
         "avg_job_seconds": 1.0, "result": None, "error": None, "progress": 0.0,
         "stage": "queued", "steps_done": 0, "steps_total": 0, "attempts": 0,
         "task_type": "text2music", "cancelled": False}
    )  # fmt: skip


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = Starlette(routes=[
        Route("/release_task", release_task, methods=["POST"]),
        Route("/v1/music/generate", release_task, methods=["POST"]),
        Route("/v1/jobs/{job_id}", job, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ])  # fmt: skip
    # songqueue serve: loop="auto", http="auto" pick uvloop and httptools when installed.
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False, lifespan="on")  # fmt: skip


if __name__ == "__main__":
    main()
