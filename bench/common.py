"""Helpers shared by the bench scenarios: percentiles, /proc readings, songqueue processes.

Readings come from ``/proc`` directly (no psutil) so that the bench needs nothing the project
does not already install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.processes import free_port, process_env, songqueue, stop, wait_http  # noqa: E402

__all__ = [
    "ROOT",
    "cpu_seconds",
    "emit",
    "free_port",
    "load_average",
    "memory_mib",
    "percentile",
    "process_env",
    "python",
    "songqueue",
    "stop",
    "wait_http",
]  # fmt: skip

CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values (a scenario that measured nothing says so)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: the other tenants of the 2 cores when we measured."""
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def memory_mib(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of ``pid`` in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out["rss_mib" if key == "VmRSS" else "peak_rss_mib"] = int(value.split()[0]) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (all its threads, so aiosqlite's too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def python(script: str, *args: str, timeout: float = 300) -> dict:
    """Run ``bench/SCRIPT ARGS`` in a fresh interpreter and return its last JSON line."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{script} exited {done.returncode}: {done.stderr[-2000:]}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{script} printed no JSON line: {done.stdout[-2000:]}")


def emit(record: dict) -> None:
    """The scenario's one JSON line, with the load average at its end."""
    record.setdefault("load_average", load_average())
    record.setdefault("finished_at", time.time())
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
