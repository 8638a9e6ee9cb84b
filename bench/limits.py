"""The machine's own limits, measured in the same run as the service figures.

* fsync: append 4 KiB + ``os.fsync`` in a loop on a temporary file, as ``dd oflag=dsync`` does
  (what a ``synchronous=FULL`` commit to a growing WAL waits for at least once);
* raw SQLite: one connection, WAL, ``BEGIN IMMEDIATE`` + INSERT + COMMIT per row, at FULL and
  NORMAL (spec/job-queue.md §2.3 measured 5,688 and 34,062 commits/s on a quiet machine).

    python bench/limits.py [--seconds 1.5]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, percentile

MAX_ITERATIONS = 200_000  # bound on every loop


def fsync_ms(directory: Path, seconds: float) -> dict:
    path = directory / "fsync.bin"
    block = b"\0" * 4096
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at and len(times) < MAX_ITERATIONS:
            t0 = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
    return {"fsync_p50_ms": round(1000 * percentile(times, 0.5), 3),
            "fsync_p99_ms": round(1000 * percentile(times, 0.99), 3),
            "fsyncs_per_s": round(len(times) / sum(times), 1)}  # fmt: skip


def sqlite_commits(directory: Path, synchronous: str, seconds: float) -> float:
    path = directory / f"raw_{synchronous}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, created REAL)")
    n = 0
    started = time.perf_counter()
    stop_at = started + seconds
    while time.perf_counter() < stop_at and n < MAX_ITERATIONS:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (body, created) VALUES (?, ?)", ("x" * 300, time.time()))
        conn.execute("COMMIT")
        n += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return round(n / elapsed, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="songqueue-limits-") as tmp:
        d = Path(tmp)
        record = {"bench": "limits", "directory": tempfile.gettempdir(),
                  **fsync_ms(d, args.seconds)}  # fmt: skip
        record["sqlite_full_commits_per_s"] = sqlite_commits(d, "FULL", args.seconds)
        record["sqlite_normal_commits_per_s"] = sqlite_commits(d, "NORMAL", args.seconds)
    emit(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
