"""SQLAlchemy Core tables: the schema the Alembic migrations build (songqueue's ``schema.sql``).

Times are epoch seconds (floats) written by Python so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled")

jobs = sa.Table(
    "jobs",
    metadata,
    # AUTOINCREMENT: ids are never reused, so claim order (priority, id) is submission order.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), nullable=False, unique=True),  # public id (uuid4)
    sa.Column("api", sa.String(16), nullable=False, server_default="acestep"),  # who submitted
    sa.Column("task_type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request", sa.LargeBinary, nullable=False),  # msgspec JSON of GenerationRequest
    sa.Column("duration", sa.Float, nullable=False),  # seconds of audio per item (ETA input)
    sa.Column("batch_size", sa.Integer, nullable=False),  # items (ETA input)
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("run_after", sa.Float, nullable=False),  # retry back-off: not claimable before
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("lease_token", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("engine", sa.String(32), nullable=True),  # engine that ran (runs) the job
    sa.Column("steps_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("steps_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("stage", sa.String(200), nullable=False, server_default="queued"),
    sa.Column("last_step_at", sa.Float, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("result", sa.LargeBinary, nullable=True),  # msgspec JSON of JobResult
    sa.Column("error", sa.Text, nullable=True),
    # Claim and queue position walk this index in order: no sort, no table scan.
    sa.Index("ix_jobs_claim", "status", sa.text("priority DESC"), "id"),
    sa.Index("ix_jobs_lease", "status", "lease_until"),
    sa.Index("ix_jobs_finished", "status", "finished_at"),
    # One active job per idempotency key (pgqueuer's dedupe_key, procrastinate's queueing_lock).
    sa.Index(
        "ux_jobs_idempotency_active",
        "idempotency_key",
        unique=True,
        sqlite_where=sa.text("status IN ('queued', 'running') AND idempotency_key IS NOT NULL"),
        postgresql_where=sa.text("status IN ('queued', 'running') AND idempotency_key IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
)

# Rolling per-step timings, one row per (engine, task type, duration bucket, batch size).
timing_stats = sa.Table(
    "timing_stats",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("samples", sa.Integer, nullable=False),
    sa.Column("step_seconds", sa.Float, nullable=False),  # wall time per engine step
    sa.Column("overhead_seconds", sa.Float, nullable=False),  # job time outside the steps
    sa.Column("steps", sa.Float, nullable=False),  # steps per job (engines differ)
    sa.Column("duration", sa.Float, nullable=False),  # mean audio seconds per item
    sa.Column("updated_at", sa.Float, nullable=False),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("worker_id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("engine", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("jobs_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("current_job", sa.String(64), nullable=True),
    sa.Column("stopped_at", sa.Float, nullable=True),
)
