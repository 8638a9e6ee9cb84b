"""The whole bench in one command: every figure beside a baseline measured in the same run.

    python bench/run.py            # full run (about 6 minutes on the 2-core machine)
    python bench/run.py --quick    # tiny smoke configuration (about 1-2 minutes)
    python bench/run.py --only submit,polls

Each scenario runs in a fresh process (``bench/*.py``) that prints one JSON line; this script
collects them, prints a table with the targets of spec/job-queue.md §5.4 and a pass/miss
column, and writes ``bench/results/latest.json``. A scenario that fails is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, load_average, python

RESULTS = ROOT / "bench" / "results"
MEMORY_FLAT_MIB = 5.0  # "flat": RSS grows by at most this much after the first 10 % of requests


@dataclass(frozen=True)
class Scenario:
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout: float  # seconds


SCENARIOS: dict[str, Scenario] = {
    "limits": Scenario("limits.py", ("--seconds", "1.5"), ("--seconds", "0.3"), 60),
    "dbpath": Scenario("dbpath.py", ("--n", "300"), ("--n", "20"), 120),
    "submit": Scenario("api_load.py", ("submit", "--seconds", "8", "--warmup", "2", "--profile"),
                       ("submit", "--seconds", "1", "--warmup", "0.5", "--idle-claims", "20"),
                       300),
    "polls": Scenario("api_load.py", ("polls", "--jobs", "1000", "--seconds", "6", "--warmup",
                                      "1.5", "--profile"),
                      ("polls", "--jobs", "30", "--seconds", "1", "--warmup", "0.5"), 300),
    "memory": Scenario("api_load.py", ("memory", "--requests", "100000", "--memory-seconds",
                                       "90"),
                       ("memory", "--requests", "1000", "--memory-seconds", "20"), 300),
    "pickup": Scenario("workers.py", ("pickup", "--pickups", "30"), ("pickup", "--pickups", "3"),
                       180),
    "eta": Scenario("workers.py", ("eta", "--jobs", "30", "--warmup-jobs", "6"),
                    ("eta", "--jobs", "4", "--warmup-jobs", "2"), 400),
    "synth": Scenario("synth_rtf.py", (), ("--quick",), 180),
    "diffrhythm": Scenario("diffrhythm_step.py",
                           ("--preset", "tiny", "--frames", "512", "--steps", "5", "--warmup",
                            "1"),
                           ("--preset", "tiny", "--frames", "64", "--steps", "2", "--warmup",
                            "1"), 180),
}  # fmt: skip


def run_scenarios(names: list[str], quick: bool) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name in names:
        sc = SCENARIOS[name]
        args = sc.quick if quick else sc.full
        print(f"-- {name}: bench/{sc.script} {' '.join(args)}  (load {load_average()})",
              file=sys.stderr, flush=True)  # fmt: skip
        started = time.perf_counter()
        try:
            out[name] = python(sc.script, *args, timeout=sc.timeout)
        except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            out[name] = {"skipped": f"{type(exc).__name__}: {str(exc)[-600:]}"}
        out[name]["wall_s"] = round(time.perf_counter() - started, 1)
    return out


Row = tuple[str, str, str, str, str]  # figure, value, baseline, target, pass/miss


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("pass" if ok else "MISS")


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def _rows_limits(r: dict) -> list[Row]:
    return [("disk: append+fsync", f"{fmt(r['fsync_p50_ms'], 2)} ms p50",
             f"{fmt(r['fsyncs_per_s'], 0)} fsyncs/s", "", "-"),
            ("raw SQLite commits/s (FULL)", fmt(r["sqlite_full_commits_per_s"], 0),
             f"NORMAL {fmt(r['sqlite_normal_commits_per_s'], 0)}", "", "-")]  # fmt: skip


def _rows_dbpath(r: dict) -> list[Row]:
    return [
        ("aiosqlite thread hops: submission / get_job",
         f"{r['hops_per_submission']} / {r['hops_per_get_job']}",
         "1 hop per transaction is the floor", "", "-"),
        ("submission DB work, CPU ms (no HTTP)", fmt(r["submission"]["cpu_ms"], 2),
         f"SELECT 1: SQLAlchemy {fmt(r['sqlalchemy_select1']['cpu_ms'], 3)}, aiosqlite "
         f"{fmt(r['aiosqlite_select1']['cpu_ms'], 3)}, sqlite3 {fmt(r['sqlite3_select1_ms'], 4)}",
         "", "-"),
    ]  # fmt: skip


def _rows_submit(r: dict, limits: dict | None = None) -> list[Row]:
    s, c, cl = r["songqueue"], r["ceiling"], r["songqueue_with_claimer"]
    commit = ""
    if limits and limits.get("sqlite_full_commits_per_s"):
        commit = f"; 1 FULL commit {1000 / limits['sqlite_full_commits_per_s']:.2f}"
    rows: list[Row] = [
        (f"submissions/s ({r['path']}, 16 clients)", fmt(s["requests_per_s"]),
         f"bare Starlette {fmt(c['requests_per_s'])} (x{r['ratio_to_ceiling']:.2f})", ">= 300",
         verdict(s["requests_per_s"] >= 300)),
        ("submission p50 / p99 ms", f"{fmt(s['p50_ms'])} / {fmt(s['p99_ms'])}",
         f"bare {fmt(c['p50_ms'])} / {fmt(c['p99_ms'])}", "p99 <= 150",
         verdict(s["p99_ms"] <= 150)),
        ("server CPU ms per submission", fmt(s["server_cpu_ms_per_req"], 2),
         f"bare {fmt(c['server_cpu_ms_per_req'], 2)}", "", "-"),
        ("submissions/s with a claimer running", fmt(cl["requests_per_s"]),
         f"p99 {fmt(cl['p99_ms'])} ms", "", "-"),
        ("claim p99 ms, idle", fmt(r["claim_idle"]["claim_p99_ms"], 2),
         f"p50 {fmt(r['claim_idle']['claim_p50_ms'], 2)}{commit}", "<= 2",
         verdict(r["claim_idle"]["claim_p99_ms"] <= 2)),
        ("claim p99 ms, under submission load", fmt(r["claim_under_load"]["claim_p99_ms"], 1),
         f"idle p99 {fmt(r['claim_idle']['claim_p99_ms'], 2)}", "<= 100",
         verdict(r["claim_under_load"]["claim_p99_ms"] <= 100)),
    ]  # fmt: skip
    return rows


def _rows_polls(r: dict) -> list[Row]:
    g, q, c = r["get_v1_jobs"], r["query_result"], r["ceiling_get"]
    return [
        (f"polls/s GET /v1/jobs/{{id}} ({r['jobs']} queued)", fmt(g["requests_per_s"]),
         f"bare Starlette {fmt(c['requests_per_s'])} (x{r['ratio_to_ceiling']:.2f})", ">= 500",
         verdict(g["requests_per_s"] >= 500)),
        ("poll p99 ms GET /v1/jobs/{id}", fmt(g["p99_ms"]), f"bare {fmt(c['p99_ms'])}", "", "-"),
        ("server CPU ms per poll GET /v1/jobs/{id}", fmt(g["server_cpu_ms_per_req"], 2),
         f"bare {fmt(c['server_cpu_ms_per_req'], 2)}", "", "-"),
        ("polls/s POST /query_result", fmt(q["requests_per_s"]), f"p99 {fmt(q['p99_ms'])} ms",
         ">= 500", verdict(q["requests_per_s"] >= 500)),
    ]  # fmt: skip


def _rows_memory(r: dict) -> list[Row]:
    growth = r["growth_after_first_mib"]
    done = f"{r['requests_done']:,}" + (" (capped)" if r["capped"] else "")
    return [(f"API RSS MiB over {done} GETs",
             f"{fmt(r['rss_start_mib'])} > {fmt(r['rss_after_first_mib'])} > "
             f"{fmt(r['rss_end_mib'])}", f"growth after 10 %: {fmt(growth)} MiB",
             f"flat (<= {MEMORY_FLAT_MIB:.0f} MiB)",
             "capped" if r["capped"] else verdict(growth <= MEMORY_FLAT_MIB))]  # fmt: skip


def _rows_pickup(r: dict) -> list[Row]:
    return [("enqueue-to-start ms p50 / p99", f"{fmt(r['pickup_p50_ms'])} / "
             f"{fmt(r['pickup_p99_ms'])}", "worker idle poll 50 ms", "p99 <= 100",
             verdict(r["pickup_p99_ms"] <= 100))]  # fmt: skip


def _rows_eta(r: dict) -> list[Row]:
    med, p90 = r["eta_error_median"], r["eta_error_p90"]
    return [
        (f"ETA error median ({r['jobs']} mixed jobs, synth)",
         "n/a" if med is None else f"{100 * med:.1f} %", f"makespan {fmt(r['makespan_s'])} s",
         "<= 15 %", verdict(None if med is None else med <= 0.15)),
        ("ETA error p90", "n/a" if p90 is None else f"{100 * p90:.1f} %",
         f"{r['without_eta']} without ETA, {r['failed_jobs']} failed", "<= 35 %",
         verdict(None if p90 is None else p90 <= 0.35)),
        ("worker peak RSS MiB (synth)", " / ".join(fmt(x) for x in r["worker_peak_rss_mib"]),
         "", "", "-"),
    ]  # fmt: skip


def _rows_synth(r: dict) -> list[Row]:
    worst = min(r["results"], key=lambda x: x["rtf"])
    return [("synth real-time factor (worst case)", f"{fmt(worst['rtf'])}x",
             f"{worst['case']}; 1 thread", ">= 50x", verdict(worst["rtf"] >= 50))]  # fmt: skip


def _rows_diffrhythm(r: dict) -> list[Row]:
    b, s = r["results"]["batched"], r["results"]["sequential"]
    return [("DiffRhythm tiny ms/step, batched CFG", fmt(b["ms_per_step_p50"]),
             f"two passes {fmt(s['ms_per_step_p50'])} (x{r['batched_speedup']:.2f})",
             "", "-")]  # fmt: skip


ROWS: dict[str, Callable[[dict], list[Row]]] = {
    "limits": _rows_limits, "dbpath": _rows_dbpath, "submit": _rows_submit, "polls": _rows_polls,
    "memory": _rows_memory, "pickup": _rows_pickup, "eta": _rows_eta, "synth": _rows_synth,
    "diffrhythm": _rows_diffrhythm,
}  # fmt: skip


def table(results: dict[str, dict]) -> tuple[list[Row], str]:
    rows: list[Row] = []
    for name, r in results.items():
        if "skipped" in r:
            rows.append((f"{name}: skipped", r["skipped"][:60], "", "", "-"))
            continue
        try:
            if name == "submit":
                rows += _rows_submit(r, results.get("limits"))
            else:
                rows += ROWS[name](r)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            rows.append((f"{name}: unreadable result", repr(exc)[:60], "", "", "-"))
    head: Row = ("figure", "value", "baseline (same run)", "target", "result")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [head, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return rows, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke configuration")
    parser.add_argument("--only", default="", help="comma-separated scenarios: "
                        + ",".join(SCENARIOS))  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--memory-seconds", type=float, default=None,
                        help="cap of the memory scenario (default 90; ~600 reaches 100,000 "
                        "requests at ~200 req/s)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.memory_seconds is not None:
        mem = SCENARIOS["memory"]
        SCENARIOS["memory"] = Scenario(
            mem.script, (*mem.full[:-1], str(args.memory_seconds)),
            (*mem.quick[:-1], str(args.memory_seconds)), args.memory_seconds + 120,
        )  # fmt: skip
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    started = time.time()
    load_start = load_average()
    results = run_scenarios(names, args.quick)
    rows, text = table(results)
    loadgen = results.get("submit", {}).get("songqueue", {}).get("loadgen", "n/a")
    header = (f"songqueue bench{' (quick)' if args.quick else ''}: {platform.node()}, "
              f"{os.cpu_count()} CPUs; load average {load_start} at start, {load_average()} at "
              f"end; load generator {loadgen}; {time.time() - started:.0f} s")  # fmt: skip
    print(header)
    print(text)
    record = {
        "bench": "run", "quick": args.quick, "started_at": started, "header": header,
        "load_average_start": load_start, "load_average_end": load_average(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "table": [dict(zip(["figure", "value", "baseline", "target", "verdict"], r,
                           strict=True)) for r in rows],
        "scenarios": results,
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
