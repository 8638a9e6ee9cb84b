"""``POST /v1/jobs/{id}/cancel``: the era A job shape back, at once for a queued job, harmless
when repeated, 404 for an unknown id, behind the API key when one is set. (Cancelling a running
job is exercised against real processes in tests/client/test_client.py.)"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from tests.api.conftest import Server


def test_cancel_a_queued_job(make_server: Callable[..., AbstractContextManager[Server]]) -> None:
    with make_server(worker=False, api_key="k") as idle:
        job_id = idle.post("/v1/music/generate", {"caption": "x", "audio_duration": 2}).json()[
            "job_id"
        ]
        assert idle.client.post(f"/v1/jobs/{job_id}/cancel").status_code == 401
        res = idle.client.post(f"/v1/jobs/{job_id}/cancel", headers=idle.headers)
        assert res.status_code == 200
        job = res.json()
        assert job["job_id"] == job_id and job["status"] == "failed" and job["cancelled"]
        assert job["error"] == "cancelled by request" and job["finished_at"] is not None
        assert job["queue_position"] == 0 and job["eta_seconds"] is None
        assert set(job) >= {"created_at", "started_at", "avg_job_seconds", "result", "stage"}
        again = idle.client.post(f"/v1/jobs/{job_id}/cancel", headers=idle.headers).json()
        assert again["finished_at"] == job["finished_at"]
        assert idle.client.get(f"/v1/jobs/{job_id}", headers=idle.headers).json() == again
        missing = idle.client.post("/v1/jobs/nope/cancel", headers=idle.headers)
        assert missing.status_code == 404 and missing.json() == {"detail": "Job not found"}


def test_a_finished_job_is_left_alone(server: Server) -> None:
    job_id = server.post("/v1/music/generate", {"caption": "x", "audio_duration": 2}).json()[
        "job_id"
    ]
    done = server.wait_job(job_id)
    assert done["status"] == "succeeded"
    res = server.client.post(f"/v1/jobs/{job_id}/cancel")
    assert res.status_code == 200
    assert res.json()["status"] == "succeeded" and not res.json()["cancelled"]
    assert res.json()["result"] == done["result"]
