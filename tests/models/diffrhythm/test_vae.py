"""The TorchScript VAE wrapper: chunked decode with crossfades, chunked encode for any length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.diffrhythm.tiny import TinyVAE
from models.diffrhythm.vae import (
    HOP,
    TorchScriptVAE,
    _windows,
    chunked,
    peak_normalise,
    posterior_sample,
    to_model_audio,
)
from models.diffrhythm.weights import VAE_FILE
from models.engine import Audio


@pytest.fixture(scope="module")
def vae(tiny_dir: Path) -> TorchScriptVAE:
    return TorchScriptVAE(tiny_dir / VAE_FILE)


def test_windows_cover_and_align_to_the_end() -> None:
    assert _windows(100, 128, 32) == [(0, 100)]
    spans = _windows(300, 128, 32)
    assert spans == [(0, 128), (96, 224), (172, 300)]
    assert spans[-1][1] == 300


def test_chunked_apply_is_seamless_for_a_pointwise_function() -> None:
    x = torch.randn(1, 3, 500)
    out = chunked(lambda t: t * 2, x, frames=500, in_per_frame=1, out_per_frame=1)
    torch.testing.assert_close(out, x * 2)


def test_chunked_decode_matches_one_shot_decode(vae: TorchScriptVAE) -> None:
    z = torch.randn(1, 64, 300, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = vae.module.decode_export(z)
    pieces = vae.decode(z)
    assert pieces.shape == (1, 2, 300 * HOP)
    # window edges lack one frame of context; the discarded margins hide it entirely
    torch.testing.assert_close(pieces, whole, rtol=0, atol=1e-5)


def test_encode_short_and_ragged_inputs(vae: TorchScriptVAE) -> None:
    for samples in (1, HOP, 5 * HOP + 17, 300 * HOP):
        mean, scale = vae.encode(torch.randn(1, 2, samples))
        frames = -(-samples // HOP)
        assert mean.shape == scale.shape == (1, 64, frames)
    with pytest.raises(ValueError, match="empty"):
        vae.encode(torch.zeros(1, 2, 0))


def test_posterior_sample_is_seeded() -> None:
    mean, scale = torch.zeros(1, 64, 5), torch.zeros(1, 64, 5)
    a = posterior_sample(mean, scale, torch.Generator().manual_seed(1))
    b = posterior_sample(mean, scale, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.std() > 0.1


def test_to_model_audio_resamples_stereoises_and_normalises() -> None:
    mono = Audio(np.sin(np.linspace(0, 100, 22050, dtype=np.float32))[None] * 0.2, 22050)
    out = to_model_audio(mono)
    assert out.shape == (1, 2, 44100)
    assert abs(float(out.abs().max()) - 10 ** (-6 / 20)) < 0.01


def test_peak_normalise() -> None:
    out = peak_normalise(torch.tensor([[0.1, -0.5], [0.25, 0.0]]))
    assert float(out.abs().max()) == 1.0
    assert torch.equal(peak_normalise(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_a_file_without_the_export_methods_is_refused(tmp_path: Path) -> None:
    class NotAVae(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    torch.jit.save(torch.jit.script(NotAVae()), str(tmp_path / "v.pt"))
    with pytest.raises(ValueError, match="no encode_export"):
        TorchScriptVAE(tmp_path / "v.pt")
    # and the tiny VAE module has the official geometry
    assert TinyVAE().decode_export(torch.zeros(1, 64, 3)).shape == (1, 2, 3 * HOP)
