"""Prometheus metrics at ``/metrics`` and one access-log line per request.

Two sources, kept apart. What the API process itself sees (HTTP requests by route and status)
lives in in-process counters fed by ``HttpMetricsMiddleware``. Everything about the queue (depth,
job durations, step times, claim latency, worker heartbeats) is read from the database at scrape
time by ``StoreCollector``, so the numbers are right whichever process did the work: workers
run in other processes and several API processes may share one database.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import require_header
from service.state import app_state
from service.store import queue
from service.store.db import Database
from service.store.eta import DURATION_BUCKETS, load_timing_table
from service.store.tables import JOB_STATUSES

log = logging.getLogger("songqueue.access")

RECENT_JOBS = 500  # most recently started jobs summarised by the duration and claim metrics
MAX_WORKERS_SHOWN = 200  # worker rows exported (a fleet rarely has more; caps cardinality)
QUANTILES = (0.5, 0.9, 0.99)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
# The classic text format: what every Prometheus (2.x and 3.x) and agent parses.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED_ROUTE = "<unmatched>"  # 404s: one label value, not one per probed path


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted, non-empty sequence."""
    rank = math.ceil(q * len(sorted_values) - 1e-9)  # the epsilon: 0.99 * 100 is 99.000...01
    index = min(len(sorted_values) - 1, max(0, rank - 1))
    return sorted_values[index]


def _summary(name: str, doc: str, label: str, groups: dict[str, list[float]]) -> Metric:
    """A Prometheus summary (quantiles, sum, count) per label value, over a window of values."""
    family = SummaryMetricFamily(name, doc, labels=[label])
    for key, values in sorted(groups.items()):
        values.sort()
        family.add_metric([key], count_value=len(values), sum_value=sum(values))
        for q in QUANTILES:
            family.add_sample(name, {label: key, "quantile": str(q)}, quantile(values, q))
    return family


@dataclass
class StoreSnapshot:
    """Everything the store collector exports, read in one go."""

    taken_at: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    started: list[queue.StartedJob] = field(default_factory=list)
    workers: list[queue.WorkerInfo] = field(default_factory=list)
    timings: list[tuple[str, str, str, str, float, float, int]] = field(default_factory=list)


class StoreCollector(Collector):
    """Queue metrics from the database. ``refresh()`` (async) reads; ``collect()`` exports.

    prometheus-client collects synchronously, while the store is async: the ``/metrics`` route
    awaits ``refresh()`` and then renders, so every scrape reflects the database at that moment.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.snapshot = StoreSnapshot()

    async def refresh(self) -> None:
        counts = await queue.counts_by_status(self.db)
        async with self.db.read() as conn:
            started = await queue.recent_started_jobs(conn, limit=RECENT_JOBS)
            workers = await queue.unstopped_workers(conn, limit=MAX_WORKERS_SHOWN)
        table = await self.db.run_read(load_timing_table)
        timings = []
        for key, stat in table.stats.items():
            engine, task_type, bucket, batch = key.split("|")
            timings.append(
                (
                    engine,
                    task_type,
                    _bucket_label(int(bucket)),
                    batch,
                    stat.step_seconds,
                    stat.overhead_seconds,
                    stat.samples,
                )
            )
        self.snapshot = StoreSnapshot(time.time(), counts, started, workers, timings)

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        depth = GaugeMetricFamily(
            "songqueue_jobs", "Jobs in the database by status.", labels=["status"]
        )
        for status in JOB_STATUSES:
            depth.add_metric([status], snap.counts.get(status, 0))
        yield depth

        durations: dict[str, list[float]] = defaultdict(list)
        claims: dict[str, list[float]] = defaultdict(list)
        for job in snap.started:
            engine = job.engine or "unknown"
            claims[engine].append(max(job.started_at - job.created_at, 0.0))
            if job.status == "succeeded" and job.finished_at is not None:
                durations[engine].append(max(job.finished_at - job.started_at, 0.0))
        yield _summary(
            "songqueue_job_duration_seconds",
            f"Wall time of succeeded jobs, start to finish, over the last {RECENT_JOBS} started.",
            "engine",
            durations,
        )
        yield _summary(
            "songqueue_claim_latency_seconds",
            f"Submission to start (started_at - created_at), over the last {RECENT_JOBS} started.",
            "engine",
            claims,
        )

        labels = ["engine", "task_type", "duration_bucket", "batch_size"]
        step = GaugeMetricFamily(
            "songqueue_step_seconds", "Moving average of seconds per engine step.", labels=labels
        )
        overhead = GaugeMetricFamily(
            "songqueue_job_overhead_seconds",
            "Moving average of job time outside the engine steps.",
            labels=labels,
        )
        samples = GaugeMetricFamily(
            "songqueue_timing_samples", "Jobs folded into the step-time averages.", labels=labels
        )
        for engine, task_type, bucket, batch, step_s, overhead_s, n in sorted(snap.timings):
            key = [engine, task_type, bucket, batch]
            step.add_metric(key, step_s)
            overhead.add_metric(key, overhead_s)
            samples.add_metric(key, n)
        yield from (step, overhead, samples)

        age = GaugeMetricFamily(
            "songqueue_worker_heartbeat_age_seconds",
            "Seconds since each running worker's last heartbeat (stopped workers are left out).",
            labels=["worker_id", "engine", "host"],
        )
        done = GaugeMetricFamily(
            "songqueue_worker_jobs_done", "Jobs each worker has finished.", labels=["worker_id"]
        )
        busy = GaugeMetricFamily(
            "songqueue_worker_busy", "1 while the worker runs a job.", labels=["worker_id"]
        )
        for w in snap.workers:
            age.add_metric([w.worker_id, w.engine, w.host], max(snap.taken_at - w.heartbeat_at, 0))
            done.add_metric([w.worker_id], w.jobs_done)
            busy.add_metric([w.worker_id], 1 if w.current_job else 0)
        yield from (age, done, busy)


def _bucket_label(bucket: int) -> str:
    """The ETA duration bucket as its upper bound in seconds (``+Inf`` for the last)."""
    return f"{DURATION_BUCKETS[bucket]:g}" if bucket < len(DURATION_BUCKETS) else "+Inf"


class Metrics:
    """One API process's registry: its HTTP counters and the store collector."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.store = StoreCollector(db)
        self.registry.register(self.store)
        self.requests = Counter(
            "songqueue_http_requests",
            "HTTP requests answered by this API process.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "songqueue_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of the body).",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )

    async def render(self) -> bytes:
        await self.store.refresh()
        return generate_latest(self.registry)


def route_label(scope: Scope) -> str:
    """The matched route's template (``/v1/jobs/{job_id}``): bounded label values."""
    app = scope.get("app")
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "path", UNMATCHED_ROUTE) or "/"
    return UNMATCHED_ROUTE


class _Status:
    """Passes response messages on and remembers the status sent (500 when the app raised
    before starting a response: that is what the server outside us will send)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 500

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


class HttpMetricsMiddleware:
    """Counts requests and times them by method, route template and status (pure ASGI)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        response = _Status(send)
        try:
            await self.app(scope, receive, response.send)
        finally:
            status = response.status
            route = route_label(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)


class AccessLogMiddleware:
    """One log line per request: method, path (never the query: it may hold ``ai_token``),
    status and milliseconds. JSON when ``SONGQUEUE_LOG_JSON`` is set, as every log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        response = _Status(send)
        try:
            await self.app(scope, receive, response.send)
        finally:
            status = response.status
            ms = (time.perf_counter() - start) * 1000
            fields = {"method": scope["method"], "path": scope["path"], "status": status}
            log.info(
                "%s %s %d %.1f ms",
                *fields.values(),
                ms,
                extra={"http": fields | {"ms": round(ms, 1)}},  # for structured formatters
            )


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: Prometheus text format. Needs the API key when one is set."""
    state = app_state(request)
    require_header(state.settings, request)
    metrics: Metrics = request.app.state.metrics
    return Response(await metrics.render(), media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"])]
