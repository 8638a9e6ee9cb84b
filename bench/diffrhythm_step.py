"""Per-step time of the DiffRhythm sampler, with and without batched CFG.

One Euler step = one guided velocity (two DiT branches) + the update. "batched" runs both CFG
branches as one forward of batch 2B (our sampler); "sequential" runs two forwards of batch B
(upstream). Random weights, so no checkpoint is needed: ``--preset tiny`` on CPU, ``base`` or
``full`` on a GPU for real-size timings.

    python bench/diffrhythm_step.py [--preset tiny] [--frames 2048] [--batch 1] [--steps 10]

Prints a table and, last, one JSON line. Warm-up steps are excluded and reported apart; the
device is synchronised before every clock read; the two modes alternate step by step. Peak
memory is the process RSS on CPU and the allocator peak on CUDA.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.diffrhythm.dit import DiffRhythmModel, DiTConfig
from models.diffrhythm.sampler import (
    Conditioning,
    euler_step,
    initial_noise,
    time_grid,
    velocity,
)

log = logging.getLogger("bench.diffrhythm_step")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(preset: str, device: torch.device, dtype: torch.dtype) -> DiffRhythmModel:
    """A random-weight model of the preset, initialised directly on the device."""
    torch.manual_seed(0)
    with device:
        model = DiffRhythmModel(DiTConfig.from_name(preset))
    return model.to(dtype).eval().requires_grad_(False)


def conditioning(
    model: DiffRhythmModel, batch: int, frames: int, device: torch.device, dtype: torch.dtype
) -> Conditioning:
    cfg = model.cfg
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, cfg.text_num_embeds + 1, (1, frames), generator=gen).to(device)
    with torch.inference_mode():
        text = model.embed_text(tokens).expand(batch, -1, -1)
        null = model.embed_text(tokens, drop_text=True).expand(batch, -1, -1)
    style = torch.randn(1, cfg.style_dim, generator=gen).to(device, dtype)
    return Conditioning(
        cond=torch.zeros(batch, frames, cfg.mel_dim, device=device, dtype=dtype),
        text_emb=text,
        null_text_emb=null,
        style=style.expand(batch, -1),
        negative_style=(-style).expand(batch, -1),
        start_time=torch.zeros(batch, device=device, dtype=dtype),
        duration=torch.full((batch,), 0.5, device=device, dtype=dtype)
        if cfg.duration_embed
        else None,
    )


@torch.inference_mode()
def time_steps(
    model: DiffRhythmModel,
    c: Conditioning,
    *,
    batch: int,
    frames: int,
    steps: int,
    warmup: int,
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, tuple[list[float], list[float]]]:
    """Seconds per step (warm-up, measured) for each mode.

    The two modes alternate step by step, so that a noisy machine slows both alike.
    """
    modes = {"sequential": False, "batched": True}
    x = {m: initial_noise(range(batch), frames, model.cfg.mel_dim, device, dtype) for m in modes}
    times: dict[str, list[float]] = {m: [] for m in modes}
    grid = time_grid(warmup + steps).to(device)
    for k in range(warmup + steps):
        for mode, batched in modes.items():
            sync(device)
            start = time.perf_counter()
            v = velocity(model, x[mode], grid[k], c, 4.0, batched_cfg=batched)
            x[mode] = euler_step(x[mode], v, grid[k + 1] - grid[k])
            sync(device)
            times[mode].append(time.perf_counter() - start)
    return {m: (t[:warmup], t[warmup:]) for m, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", help="tiny, tiny-full, base, full")
    parser.add_argument("--frames", type=int, default=2048, help="latent frames (2048 = 95 s)")
    parser.add_argument("--batch", type=int, default=1, help="tracks per job")
    parser.add_argument("--steps", type=int, default=10, help="measured steps per mode")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    device = torch.device(args.device)
    dtype = DTYPES[args.dtype or ("fp16" if device.type == "cuda" else "fp32")]
    model = build(args.preset, device, dtype)
    c = conditioning(model, args.batch, args.frames, device, dtype)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timings = time_steps(
        model, c, batch=args.batch, frames=args.frames, steps=args.steps,
        warmup=args.warmup, device=device, dtype=dtype,
    )  # fmt: skip
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    results: dict[str, dict[str, float]] = {}
    for mode, (warm, measured) in timings.items():
        results[mode] = {
            "ms_per_step_mean": 1000 * statistics.fmean(measured),
            "ms_per_step_p50": 1000 * statistics.median(measured),
            "ms_per_step_min": 1000 * min(measured),
            "steps_per_s": 1 / statistics.fmean(measured),
            "warmup_ms_first": 1000 * warm[0] if warm else 0.0,
        }
    speedup = results["sequential"]["ms_per_step_p50"] / results["batched"]["ms_per_step_p50"]
    header = (
        f"{'mode':<11} {'mean ms':>9} {'p50 ms':>9} {'min ms':>9} {'steps/s':>8} {'warm ms':>9}"
    )
    log.info(
        "DiffRhythm step, preset %s, %d frames, batch %d, %s on %s (%d measured steps)",
        args.preset, args.frames, args.batch, str(dtype).removeprefix("torch."), device,
        args.steps,
    )  # fmt: skip
    log.info(header)
    for mode, r in results.items():
        log.info(
            "%-11s %9.1f %9.1f %9.1f %8.2f %9.1f",
            mode, r["ms_per_step_mean"], r["ms_per_step_p50"], r["ms_per_step_min"],
            r["steps_per_s"], r["warmup_ms_first"],
        )  # fmt: skip
    log.info("batched CFG speed-up (p50): %.2fx; a 31-step job at the batched p50: %.2f s",
             speedup, 31 * results["batched"]["ms_per_step_p50"] / 1000)  # fmt: skip
    record = {
        "bench": "diffrhythm_step",
        "preset": args.preset,
        "frames": args.frames,
        "batch": args.batch,
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "results": {m: {k: round(v, 3) for k, v in r.items()} for m, r in results.items()},
        "batched_speedup": round(speedup, 3),
        "peak_mem_mib": round(peak, 1),
    }
    sys.stdout.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
