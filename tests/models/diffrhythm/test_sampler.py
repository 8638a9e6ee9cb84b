"""The Euler/CFG sampler: grid, guidance, seeds, repaint splice, partial start, progress."""

from __future__ import annotations

import math

import pytest
import torch

from models.diffrhythm.dit import DiffRhythmModel, DiTConfig
from models.diffrhythm.sampler import (
    Conditioning,
    cfg_combine,
    cover_start_index,
    initial_noise,
    sample,
    time_grid,
    velocity,
)

FRAMES = 48


@pytest.fixture(scope="module")
def model() -> DiffRhythmModel:
    torch.manual_seed(3)
    return DiffRhythmModel(DiTConfig.from_name("tiny")).eval()


def _cond(model: DiffRhythmModel, batch: int, cond: torch.Tensor | None = None) -> Conditioning:
    gen = torch.Generator().manual_seed(7)
    tokens = torch.randint(1, 364, (1, FRAMES), generator=gen)
    with torch.no_grad():
        text = model.embed_text(tokens).expand(batch, -1, -1)
        null = model.embed_text(tokens, drop_text=True).expand(batch, -1, -1)
    style = torch.nn.functional.normalize(torch.randn(1, 512, generator=gen), dim=-1)
    negative = torch.nn.functional.normalize(torch.randn(1, 512, generator=gen), dim=-1)
    return Conditioning(
        cond=torch.zeros(batch, FRAMES, 64) if cond is None else cond,
        text_emb=text,
        null_text_emb=null,
        style=style.expand(batch, -1),
        negative_style=negative.expand(batch, -1),
        start_time=torch.zeros(batch),
        duration=None,
    )


def test_time_grid_is_upstreams_32_points() -> None:
    t = time_grid(31)
    assert t.shape == (32,)
    assert t[0] == 0 and t[-1] == 1
    torch.testing.assert_close(t[1] - t[0], torch.tensor(1 / 31))
    sway = time_grid(31, sway_coef=-1.0)
    assert sway[0] == 0 and math.isclose(float(sway[-1]), 1.0, abs_tol=1e-6)
    assert bool((sway[1:-1] < t[1:-1]).all())  # negative sway spends more steps near noise
    assert bool((sway[1:] > sway[:-1]).all())
    with pytest.raises(ValueError):
        time_grid(0)


def test_cfg_combine_is_upstreams_formula() -> None:
    pred, null = torch.tensor([3.0]), torch.tensor([1.0])
    assert cfg_combine(pred, null, 4.0).item() == 3.0 + 4.0 * 2.0


def test_batched_cfg_equals_two_forwards(model: DiffRhythmModel) -> None:
    c = _cond(model, batch=2)
    x = initial_noise([1, 2], FRAMES, 64, torch.device("cpu"), torch.float32)
    t = torch.tensor(0.4)
    with torch.no_grad():
        batched = velocity(model, x, t, c, 4.0, batched_cfg=True)
        sequential = velocity(model, x, t, c, 4.0, batched_cfg=False)
        unguided = velocity(model, x, t, c, 0.0)
    torch.testing.assert_close(batched, sequential, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(batched, unguided)


def test_per_item_seeds(model: DiffRhythmModel) -> None:
    cpu = torch.device("cpu")
    noise = initial_noise([5, 6, 5], FRAMES, 64, cpu, torch.float32)
    assert torch.equal(noise[0], noise[2]) and not torch.equal(noise[0], noise[1])
    assert torch.equal(initial_noise([6], FRAMES, 64, cpu, torch.float32)[0], noise[1])
    mask = torch.ones(2, FRAMES, dtype=torch.bool)
    pair = sample(model, noise[:2], _cond(model, 2), mask, steps=3)
    alone = sample(model, noise[1:2], _cond(model, 1), mask[:1], steps=3)
    torch.testing.assert_close(pair[1:2], alone, rtol=1e-4, atol=1e-4)


def test_euler_integrates_a_constant_velocity() -> None:
    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor, *args: object) -> torch.Tensor:
            return torch.full_like(x, 0.5)

    c = Conditioning(torch.zeros(1, 4, 2), torch.zeros(1, 4, 1), torch.zeros(1, 4, 1),
                     torch.zeros(1, 8), torch.zeros(1, 8), torch.zeros(1), None)  # fmt: skip
    noise = torch.zeros(1, 4, 2)
    out = sample(Constant(), noise, c, torch.ones(1, 4, dtype=torch.bool), steps=7)  # type: ignore[arg-type]
    torch.testing.assert_close(out, torch.full_like(noise, 0.5))  # integral of 0.5 over [0, 1]
    # from t0 = 3/7: x(t0) = t0 * source, then 4/7 of the way at velocity 0.5
    source = torch.ones(1, 4, 2)
    out = sample(Constant(), noise, c, torch.ones(1, 4, dtype=torch.bool), steps=7,  # type: ignore[arg-type]
                 start_index=3, source=source)  # fmt: skip
    torch.testing.assert_close(out, torch.full_like(noise, 3 / 7 + 0.5 * 4 / 7))


def test_repaint_keeps_frames_outside_the_span_bit_exact(model: DiffRhythmModel) -> None:
    gen = torch.Generator().manual_seed(11)
    source = torch.randn(1, FRAMES, 64, generator=gen)
    mask = torch.zeros(1, FRAMES, dtype=torch.bool)
    mask[:, 10:30] = True
    cond = torch.where(mask[..., None], 0.0, source)
    noise = initial_noise([1], FRAMES, 64, torch.device("cpu"), torch.float32)
    out = sample(model, noise, _cond(model, 1, cond), mask, steps=4)
    assert torch.equal(out[:, :10], source[:, :10])
    assert torch.equal(out[:, 30:], source[:, 30:])
    assert not torch.allclose(out[:, 10:30], source[:, 10:30])


def test_cover_start_index() -> None:
    assert cover_start_index(31, 0.0, 0.7) == 0
    assert cover_start_index(31, 1.0, 0.7) == 21
    assert cover_start_index(4, 1.0, 1.0) == 3  # never skips every step
    with pytest.raises(ValueError):
        cover_start_index(31, 1.5, 0.7)


def test_progress_and_cancellation(model: DiffRhythmModel) -> None:
    calls: list[tuple[int, int]] = []
    noise = initial_noise([1], FRAMES, 64, torch.device("cpu"), torch.float32)
    mask = torch.ones(1, FRAMES, dtype=torch.bool)
    sample(model, noise, _cond(model, 1), mask, steps=5, start_index=2, source=noise,
           on_step=lambda d, t: calls.append((d, t)), total=4)  # fmt: skip
    assert calls == [(1, 4), (2, 4), (3, 4)]

    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        sample(model, noise, _cond(model, 1), mask, steps=5, on_step=cancel)
