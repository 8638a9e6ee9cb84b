"""Scenarios with real workers: enqueue-to-start latency and ETA accuracy (plus worker memory).

    python bench/workers.py pickup [--pickups 30]
    python bench/workers.py eta [--jobs 30] [--warmup-jobs 6] [--workers 2]

``pickup`` submits one job at a time to an idle worker (``models.testing:TimedEngine``, one
instant step) and reads started_at - created_at. ``eta`` runs mixed jobs on the synth engine
with 2 workers, records the ETA the API gives right after each submission, and compares it with
when the job really finished; it also reads each worker's peak RSS. One JSON line each.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    emit,
    free_port,
    load_average,
    memory_mib,
    percentile,
    process_env,
    songqueue,
    stop,
    wait_http,
)
from bench.queue_api import pickup_latencies
from service.store.migrate import upgrade

SOURCE_SECONDS = 30.0  # length of the generated source song for cover and repaint
FINISH_TIMEOUT = 240.0  # seconds for all ETA jobs to finish
WORKER_READY_TIMEOUT = 60.0  # seconds for workers to register
DURATIONS = (10.0, 30.0, 60.0)  # seconds of audio in the mixed jobs
BATCHES = (1, 2)
TASKS = ("text2music", "text2music", "cover", "repaint")


def write_source(path: Path, seconds: float = SOURCE_SECONDS, rate: int = 44100) -> Path:
    """A stereo 16-bit WAV with a few tones: something real for cover and repaint to read."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 331 * t) * (t % 1 < 0.5))
    pcm = (np.clip(tone, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm, 2).tobytes())
    return path


def job_body(task: str, duration: float, batch: int, source: Path) -> dict:
    body: dict = {"caption": "upbeat pop with piano and drums", "audio_duration": duration,
                  "batch_size": batch, "task_type": task, "audio_format": "wav"}  # fmt: skip
    if task in ("cover", "repaint"):
        body["src_audio_path"] = str(source)
    if task == "repaint":
        body["repainting_start"] = min(5.0, duration / 4)
        body["repainting_end"] = min(duration, SOURCE_SECONDS) * 0.75
    return body


def mixed_jobs(count: int, source: Path, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [job_body(rng.choice(TASKS), rng.choice(DURATIONS), rng.choice(BATCHES), source)
            for _ in range(count)]  # fmt: skip


def wait_finished(db_file: Path, ids: list[str], timeout: float) -> dict[str, dict]:
    """Until every job has a finished_at, read from the database file directly: polling the
    API instead would take CPU from the workers being measured. Bounded by ``timeout``."""
    marks = ",".join("?" * len(ids))
    query = f"SELECT job_id, status, started_at, finished_at FROM jobs WHERE job_id IN ({marks})"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db_file, timeout=5) as conn:
            rows = conn.execute(query, ids).fetchall()
        done = {r[0]: {"status": r[1], "started_at": r[2], "finished_at": r[3]}
                for r in rows if r[3] is not None}  # fmt: skip
        if len(done) == len(ids):
            return done
        time.sleep(0.2)
    raise RuntimeError(f"jobs unfinished after {timeout} s")


def wait_workers(db_file: Path, count: int) -> None:
    """Until ``count`` workers have registered (a row in ``workers``), bounded."""
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while time.monotonic() < deadline:
        with sqlite3.connect(db_file, timeout=5) as conn:
            (n,) = conn.execute("SELECT count(*) FROM workers").fetchone()
        if n >= count:
            return
        time.sleep(0.2)
    raise RuntimeError("workers did not register")


class Service:
    """``songqueue serve`` plus N ``songqueue worker`` processes on a temporary home."""

    def __init__(self, tmp: Path, engine: str, workers: int, **env: str) -> None:
        self.home = tmp / "home"
        self.db_file = self.home / "songqueue.db"
        self.url = f"sqlite+aiosqlite:///{self.db_file}"
        upgrade(self.url)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environment = process_env(self.home, SONGQUEUE_QUEUE_MAXSIZE="100000", **env)
        self.api = songqueue(["serve", "--port", str(self.port)], environment, tmp / "api.log")
        self.workers: list[subprocess.Popen[bytes]] = []
        try:
            for i in range(workers):
                self.workers.append(songqueue(["worker", "--engine", engine], environment,
                                              tmp / f"worker{i}.log"))  # fmt: skip
            wait_http(self.base)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for proc in [*self.workers, self.api]:
            try:
                stop(proc)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def scenario_pickup(args: argparse.Namespace, tmp: Path) -> dict:
    svc = Service(tmp, "models.testing:TimedEngine", 1, SONGQUEUE_TEST_STEPS="1")
    try:
        wait_workers(svc.db_file, 1)
        time.sleep(1.0)  # the worker's first idle wait begins
        values = pickup_latencies(svc.base, svc.url, args.pickups)
    finally:
        svc.close()
    return {
        "bench": "pickup",
        "pickups": len(values),
        "pickup_p50_ms": round(1000 * statistics.median(values), 1),
        "pickup_p99_ms": round(1000 * percentile(values, 0.99), 1),
        "pickup_max_ms": round(1000 * max(values), 1),
    }


def scenario_eta(args: argparse.Namespace, tmp: Path) -> dict:
    sources = tmp / "sources"
    sources.mkdir()
    source = write_source(sources / "source.wav")
    svc = Service(tmp, "synth", args.workers, SONGQUEUE_AUDIO_ROOTS=str(sources))
    record: dict = {"bench": "eta", "workers": args.workers, "jobs": args.jobs,
                    "load_average_start": load_average()}  # fmt: skip
    try:
        with httpx.Client(base_url=svc.base, timeout=30) as client:
            wait_workers(svc.db_file, args.workers)
            warm = [job_body(TASKS[i % 3 + 1 if i % 2 else 0], DURATIONS[i % len(DURATIONS)],
                             BATCHES[i % 2], source) for i in range(args.warmup_jobs)]  # fmt: skip
            warm_ids = [client.post("/v1/music/generate", json=b).json()["job_id"] for b in warm]
            wait_finished(svc.db_file, warm_ids, FINISH_TIMEOUT)
            entries = []
            for body in mixed_jobs(args.jobs, source):
                response = client.post("/v1/music/generate", json=body)
                response.raise_for_status()
                job_id = response.json()["job_id"]
                asked = time.time()
                eta = client.get(f"/v1/jobs/{job_id}").json().get("eta_seconds")
                entries.append({"job_id": job_id, "asked_at": asked, "eta_s": eta,
                                "task": body["task_type"], "duration": body["audio_duration"],
                                "batch": body["batch_size"]})  # fmt: skip
            finished = wait_finished(svc.db_file, [e["job_id"] for e in entries], FINISH_TIMEOUT)
        record["worker_peak_rss_mib"] = [memory_mib(w.pid)["peak_rss_mib"] for w in svc.workers]
        record["api_rss_mib"] = memory_mib(svc.api.pid)["rss_mib"]
    finally:
        svc.close()
    errors = []
    for e in entries:
        job = finished[e["job_id"]]
        e["status"] = job["status"]
        e["actual_s"] = round(job["finished_at"] - e["asked_at"], 3)
        e["run_s"] = round(job["finished_at"] - job["started_at"], 3)
        if e["eta_s"] is not None and e["actual_s"] > 0:
            e["error"] = round(abs(e["eta_s"] - e["actual_s"]) / e["actual_s"], 4)
            errors.append(e["error"])
    record["failed_jobs"] = sum(1 for e in entries if e["status"] != "succeeded")
    record["without_eta"] = sum(1 for e in entries if e["eta_s"] is None)
    record["eta_error_median"] = round(statistics.median(errors), 4) if errors else None
    record["eta_error_p90"] = round(percentile(errors, 0.9), 4) if errors else None
    record["makespan_s"] = round(max(e["actual_s"] for e in entries), 2)
    record["entries"] = entries
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["pickup", "eta"])
    parser.add_argument("--pickups", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--warmup-jobs", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    scenarios = {"pickup": scenario_pickup, "eta": scenario_eta}
    with tempfile.TemporaryDirectory(prefix="songqueue-bench-") as tmp:
        emit(scenarios[args.scenario](args, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
