"""Real-time factor of the synth engine on one thread: audio seconds per wall second.

Run as ``python bench/synth_rtf.py``. Pins BLAS/OpenMP pools to one thread before numpy loads,
renders each case once as a warm-up (tables, espeak's first calls, page faults), then times
REPEATS renders per case. Prints a table, then one JSON line.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.engine import GenerationSpec  # noqa: E402
from models.synth import SynthEngine  # noqa: E402

REPEATS = 3  # timed renders per case; the best and the median are reported
DURATIONS = (30.0, 120.0)  # seconds of audio
LYRICS = """[intro]
[verse]
walking down the empty road tonight
every window holds a little light
[chorus]
sing it loud and let the morning come
we are many and we are one
[verse]
rivers running where the city sleeps
every promise is a song it keeps
[bridge]
hold on hold on
[chorus]
sing it loud and let the morning come
we are many and we are one
[outro]"""


def _cases(durations: tuple[float, ...] = DURATIONS) -> list[tuple[str, GenerationSpec]]:
    cases = []
    for duration in durations:
        base = GenerationSpec(caption="upbeat pop with piano and drums", duration=duration)
        cases.append((f"{duration:.0f}s instrumental", base))
        cases.append((f"{duration:.0f}s with lyrics", GenerationSpec(
            caption=base.caption, lyrics=LYRICS, duration=duration)))  # fmt: skip
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 s cases only, one timed render")
    args = parser.parse_args()
    repeats = 1 if args.quick else REPEATS
    if shutil.which("espeak-ng") is None:
        print("warning: espeak-ng not found; lyrics cases render without a vocal", file=sys.stderr)
    engine = SynthEngine()
    rows = []
    for label, spec in _cases(DURATIONS[:1] if args.quick else DURATIONS):
        start = time.perf_counter()
        engine.text2music(spec)
        warmup = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            engine.text2music(spec)
            times.append(time.perf_counter() - start)
        times.sort()
        rows.append({
            "case": label,
            "audio_s": spec.duration,
            "warmup_s": round(warmup, 4),
            "best_s": round(times[0], 4),
            "median_s": round(times[len(times) // 2], 4),
            "rtf": round(spec.duration / times[len(times) // 2], 1),
        })  # fmt: skip
    print(f"{'case':<22}{'audio s':>9}{'warm-up s':>11}{'best s':>9}{'median s':>10}{'x real':>9}")
    for r in rows:
        print(f"{r['case']:<22}{r['audio_s']:>9.0f}{r['warmup_s']:>11.3f}{r['best_s']:>9.3f}"
              f"{r['median_s']:>10.3f}{r['rtf']:>9.1f}")  # fmt: skip
    print(json.dumps({"bench": "synth_rtf", "threads": 1, "repeats": repeats, "results": rows}))


if __name__ == "__main__":
    main()
