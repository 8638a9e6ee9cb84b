"""A worker-style claimer: ``queue.claim`` every ``--interval`` seconds, then ``complete``.

Times only the claim (the store's real statement through the store's own engines), from
``--start-at`` (epoch seconds, so that imports and connection set-up are not in the window) for
``--seconds`` or ``--count`` claims, whichever ends first. Prints one JSON line.

    python bench/claimer.py --url sqlite+aiosqlite:///HOME/songqueue.db --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.schemas import JobResult, ResultFile
from service.store import queue
from service.store.db import open_database

RESULT = JobResult(files=[ResultFile(path="x", format="wav", seed=0, duration=1.0)],
                   engine="bench", model_name="bench")  # fmt: skip
MAX_CLAIMS = 100_000  # bound on the loop whatever the arguments


async def claim_loop(args: argparse.Namespace) -> dict:
    db = open_database(args.url, synchronous=args.synchronous)
    name = f"bench-claimer-{os.getpid()}"
    await queue.register_worker(db, worker_id=name, host="bench", pid=os.getpid(),
                                engine="bench", model_name="bench")  # fmt: skip
    await queue.claim(db, worker_id=name, engine="bench", lease_seconds=60)  # connect, warm up
    while time.time() < args.start_at:
        await asyncio.sleep(0.005)
    latencies: list[float] = []
    empty = 0
    stop_at = time.perf_counter() + args.seconds
    while time.perf_counter() < stop_at and len(latencies) < min(args.count, MAX_CLAIMS):
        t0 = time.perf_counter()
        claimed = await queue.claim(db, worker_id=name, engine="bench", lease_seconds=60)
        latencies.append(time.perf_counter() - t0)
        if claimed is None:
            empty += 1
        else:
            await queue.complete(db, claimed, RESULT)
        await asyncio.sleep(args.interval)
    await db.dispose()
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else -1.0

    return {
        "claims": len(latencies),
        "empty_claims": empty,
        "claim_p50_ms": round(pct(0.5), 3),
        "claim_p99_ms": round(pct(0.99), 3),
        "claim_max_ms": round(pct(1.0), 3),
        "interval_s": args.interval,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--count", type=int, default=MAX_CLAIMS)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between claims")
    parser.add_argument("--start-at", type=float, default=0.0, help="epoch seconds")
    parser.add_argument("--synchronous", default="FULL", help="as the service (default FULL)")
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(asyncio.run(claim_loop(args))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
