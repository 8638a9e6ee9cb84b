"""ETA arithmetic: moving averages, fallbacks, the W-worker walk, a snapshot from the database."""

from __future__ import annotations

import pytest

from service.store import queue
from service.store.db import Database, open_database
from service.store.eta import (
    PLAIN_MEAN_SAMPLES,
    Estimate,
    JobEta,
    TimingSample,
    TimingStat,
    TimingTable,
    build_snapshot,
    load_timing_table,
    record_sample,
    remaining_seconds,
    stats_key,
    updated_stat,
    walk_queue,
    write_stat,
)
from tests.conftest import submit


def sample(
    step: float,
    *,
    overhead: float = 1.0,
    steps: int = 10,
    duration: float = 20.0,
    batch: int = 1,
    task: str = "text2music",
) -> TimingSample:
    return TimingSample("synth", task, duration, batch, steps, step, overhead)


def test_plain_mean_then_moving_average_and_outliers_ignored() -> None:
    stat = None
    for value in (1.0, 2.0, 3.0, 4.0, 5.0):
        stat = updated_stat(stat, sample(value))
    assert stat is not None and stat.samples == PLAIN_MEAN_SAMPLES
    assert stat.step_seconds == pytest.approx(3.0)  # plain mean of the first five
    stat = updated_stat(stat, sample(7.0))
    assert stat is not None and stat.step_seconds == pytest.approx(3.0 + 0.25 * 4.0)
    assert updated_stat(stat, sample(100.0)) is None  # > 3x the average: an outlier


def test_estimate_scales_by_duration_and_falls_back_across_batch_sizes() -> None:
    key = stats_key("synth", "text2music", 20.0, 1)
    table = TimingTable({key: TimingStat(key, 5, 0.5, 2.0, 10.0, 20.0)})
    exact = table.estimate("synth", "text2music", 25.0, 1)
    assert exact == Estimate(10.0, 0.5 * 25 / 20, 2.0)
    assert exact.total == pytest.approx(2.0 + 10 * 0.625)
    # batch 2 has no samples: scale the batch-1 figures by the audio produced (2x)
    assert table.estimate("synth", "text2music", 20.0, 2) == Estimate(10.0, 1.0, 2.0)
    assert table.estimate("diffrhythm", "text2music", 20.0, 1) is None


def test_walk_queue_one_worker_sums_and_two_workers_share() -> None:
    est = Estimate(steps=10, step_seconds=1.0, overhead_seconds=0.0)  # 10 s per job
    queued = [("a", None), ("b", None), ("c", None)]
    one = walk_queue([("r", "synth", 4.0)], [], queued, lambda e, f: est)
    assert one == {
        "r": JobEta(0.0, 4.0),
        "a": JobEta(4.0, 14.0),
        "b": JobEta(14.0, 24.0),
        "c": JobEta(24.0, 34.0),
    }
    two = walk_queue([("r", "synth", 4.0)], ["synth"], queued, lambda e, f: est)
    assert two["a"] == JobEta(0.0, 10.0)  # the idle worker takes it at once
    assert two["b"] == JobEta(4.0, 14.0)  # the busy one frees at 4 s
    assert two["c"] == JobEta(10.0, 20.0)


def test_walk_queue_says_none_rather_than_guess() -> None:
    assert walk_queue([], [], [("a", None)], lambda e, f: None) == {"a": None}  # no workers
    assert walk_queue([], ["synth"], [("a", None)], lambda e, f: None) == {"a": None}
    unknown_running = walk_queue(
        [("r", "synth", None)], [], [("a", None)], lambda e, f: Estimate(1, 1, 0)
    )
    assert unknown_running == {"r": None, "a": None}


def test_running_job_uses_its_own_rate_after_a_few_steps() -> None:
    est = Estimate(steps=10, step_seconds=9.0, overhead_seconds=1.0)
    now = 100.0
    # 5 of 10 steps done in 5 s: 1 s per step observed, so 5 s + overhead left
    left = remaining_seconds(
        est, steps_done=5, steps_total=10, started_at=95.0, last_step_at=100.0, now=now
    )
    assert left == pytest.approx(6.0)
    early = remaining_seconds(
        est, steps_done=1, steps_total=10, started_at=99.0, last_step_at=100.0, now=now
    )
    assert early == pytest.approx(1.0 + 9 * 9.0)


async def test_snapshot_from_the_database(db: Database) -> None:
    first = (await submit(db, audio_duration=20.0)).job
    second = (await submit(db, audio_duration=20.0)).job
    snap = await build_snapshot(db)
    assert snap.etas[first.job_id] is None and snap.workers == 0  # no workers: no guess
    await queue.register_worker(db, worker_id="w", host="h", pid=1, engine="synth", model_name="m")
    snap = await build_snapshot(db)
    assert snap.etas[first.job_id] is None  # a worker but no statistics yet
    seed = sample(0.5, overhead=1.0, steps=10, duration=20.0)
    await db.run_write(lambda conn: record_sample(conn, seed))
    snap = await build_snapshot(db)
    assert snap.etas[first.job_id] == JobEta(0.0, pytest.approx(6.0))
    assert snap.etas[second.job_id] == JobEta(pytest.approx(6.0), pytest.approx(12.0))
    assert snap.avg_job_seconds is None  # nothing has finished yet
    claimed = await queue.claim(db, worker_id="w", engine="synth", lease_seconds=30)
    assert claimed is not None
    snap = await build_snapshot(db)
    running = snap.etas[first.job_id]
    assert running is not None and running.start_in == 0.0
    assert running.finish_in == pytest.approx(6.0, abs=0.5)
    assert snap.etas[second.job_id] is not None
    assert snap.etas[second.job_id].start_in == pytest.approx(running.finish_in)  # type: ignore[union-attr]


async def test_statistics_survive_a_restart(db: Database) -> None:
    await db.run_write(lambda conn: record_sample(conn, sample(0.25)))
    await db.dispose()
    reopened = open_database(db.url)
    table = await reopened.run_read(load_timing_table)
    await reopened.dispose()
    assert table.estimate("synth", "text2music", 20.0, 1) == Estimate(10, 0.25, 1.0)


async def test_a_first_sample_racing_another_worker_does_not_fail(db: Database) -> None:
    """The row appears between this worker's read and its insert (another worker finished the
    key's first job at the same moment): the write still succeeds, keeping the newer figures."""
    first = sample(0.5)
    await db.run_write(lambda conn: record_sample(conn, first))  # the other worker's row
    stat = updated_stat(None, sample(0.75))
    assert stat is not None
    values = {
        "samples": 1,
        "step_seconds": 0.75,
        "overhead_seconds": 1.0,
        "steps": 10.0,
        "duration": 20.0,
        "updated_at": 0.0,
    }
    await db.run_write(lambda conn: write_stat(conn, stat, values, exists=False))
    table = await db.run_read(load_timing_table)
    assert table.estimate("synth", "text2music", 20.0, 1) == Estimate(10.0, 0.75, 1.0)
