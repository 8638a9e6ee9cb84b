"""``/metrics``: queue numbers read from the database (right across processes), HTTP counters
kept in the API process, and the access log's one line per request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.config import load_settings
from service.metrics import quantile
from service.store.migrate import upgrade
from tests.client.up import Up, songqueue_up

STEPS = 3
STEP_SECONDS = 0.05
KEY = "metrics-key"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(text: str) -> Samples:
    """Every sample of a Prometheus text page, keyed by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def matching(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    home = tmp_path_factory.mktemp("metrics") / "home"
    with songqueue_up(home, api_key=KEY, steps=STEPS, step_seconds=STEP_SECONDS) as running:
        yield running


def test_queue_metrics_come_from_the_worker_process_through_the_database(up: Up) -> None:
    jobs = [up.submit(audio_format="wav") for _ in range(3)]
    for job_id in jobs:
        assert up.wait_job(job_id)["status"] == "succeeded"
    cancelled = up.submit()
    up.post(f"/v1/jobs/{cancelled}/cancel")
    up.wait_job(cancelled)  # cancelled at once, at its next step, or too late: finished anyway
    assert up.get("/v1/jobs/not-a-job").status_code == 404
    assert up.get("/nowhere").status_code == 404

    res = up.get("/metrics")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = scrape(res.text)

    succeeded = value(m, "songqueue_jobs", status="succeeded")
    assert succeeded >= 3  # the cancel may have lost the race to the worker
    assert value(m, "songqueue_jobs", status="queued") == 0
    assert succeeded + value(m, "songqueue_jobs", status="cancelled") == 4
    # job durations and claim latency: summaries over recent jobs, by the worker's engine
    assert value(m, "songqueue_job_duration_seconds_count", engine="timed") == succeeded
    assert value(m, "songqueue_job_duration_seconds", engine="timed", quantile="0.5") >= (
        STEPS * STEP_SECONDS
    )
    started = value(m, "songqueue_claim_latency_seconds_count", engine="timed")
    assert succeeded <= started <= 4  # the cancelled job counts if it had started
    assert 0 <= value(m, "songqueue_claim_latency_seconds", engine="timed", quantile="0.99") < 30
    # step times from timing_stats: TimedEngine sleeps STEP_SECONDS per step
    steps = matching(m, "songqueue_step_seconds")
    assert len(steps) == 1
    (labels, step_seconds), = steps.items()
    assert dict(labels) == {
        "engine": "timed", "task_type": "text2music", "duration_bucket": "30", "batch_size": "1",
    }  # fmt: skip
    assert STEP_SECONDS <= step_seconds < STEP_SECONDS * 4
    assert value(m, "songqueue_timing_samples", **dict(labels)) == succeeded
    # one live worker, with a fresh heartbeat
    ages = matching(m, "songqueue_worker_heartbeat_age_seconds")
    assert len(ages) == 1 and 0 <= next(iter(ages.values())) < 30
    assert dict(next(iter(ages)))["engine"] == "timed"
    assert sum(matching(m, "songqueue_worker_jobs_done").values()) == started
    # HTTP counters by route template and status (this API process only)
    http = "songqueue_http_requests_total"
    assert value(m, http, method="POST", route="/v1/music/generate", status="200") == 4
    assert value(m, http, method="GET", route="/v1/jobs/{job_id}", status="404") == 1
    assert value(m, http, method="GET", route="<unmatched>", status="404") == 1
    assert value(m, http, method="POST", route="/v1/jobs/{job_id}/cancel", status="200") == 1
    hist = "songqueue_http_request_duration_seconds_count"
    assert value(m, hist, method="POST", route="/v1/music/generate") == 4


def test_metrics_follow_the_database_between_scrapes(up: Up) -> None:
    before = scrape(up.get("/metrics").text)
    done = value(before, "songqueue_jobs", status="succeeded")
    up.wait_job(up.submit())
    after = scrape(up.get("/metrics").text)
    assert value(after, "songqueue_jobs", status="succeeded") == done + 1
    scrapes = ("songqueue_http_requests_total", {"method": "GET", "route": "/metrics"})
    assert value(after, scrapes[0], **scrapes[1], status="200") == (
        value(before, scrapes[0], **scrapes[1], status="200") + 1
    )


def test_metrics_need_the_api_key_when_one_is_set(up: Up) -> None:
    assert httpx.get(up.base + "/metrics").status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert httpx.get(up.base + "/metrics", headers=bad).status_code == 401


def in_process(tmp_path: Path) -> httpx.AsyncClient:
    """The app without a server: requests go straight to the ASGI callable."""
    settings = load_settings(environ={}, env_file=None, home=str(tmp_path / "home"))
    upgrade(settings.database)
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://songqueue")


async def test_access_log_has_one_line_per_request_without_the_query(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with in_process(tmp_path) as client:
        with caplog.at_level(logging.INFO):
            caplog.clear()
            await client.get("/v1/audio", params={"path": "/etc/passwd", "ai_token": "secret"})
            await client.get("/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "songqueue.access"]
    assert len(lines) == 2
    method, path, status, ms, unit = lines[0].split()
    assert (method, path, status, unit) == ("GET", "/v1/audio", "403", "ms")
    assert float(ms) >= 0
    assert lines[1].startswith("GET /health 200 ")
    record = next(r for r in caplog.records if r.name == "songqueue.access")
    assert record.http["status"] == 403 and record.http["path"] == "/v1/audio"  # type: ignore[attr-defined]
    assert not any("secret" in line for line in lines)


async def test_metrics_page_lists_every_family_on_an_empty_store(tmp_path: Path) -> None:
    async with in_process(tmp_path) as client:
        page = (await client.get("/metrics")).text
    families = {f.name for f in text_string_to_metric_families(page)}
    assert {
        "songqueue_jobs", "songqueue_job_duration_seconds", "songqueue_claim_latency_seconds",
        "songqueue_step_seconds", "songqueue_worker_heartbeat_age_seconds",
        "songqueue_http_requests", "songqueue_http_request_duration_seconds",
    } <= families  # fmt: skip
    assert value(scrape(page), "songqueue_jobs", status="queued") == 0


def test_quantile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50.0
    assert quantile(values, 0.9) == 90.0
    assert quantile(values, 0.99) == 99.0
    assert quantile([3.0], 0.99) == 3.0
