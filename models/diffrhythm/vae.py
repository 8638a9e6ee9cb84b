"""The DiffRhythm VAE: a TorchScript ``vae_model.pt`` with ``encode_export``/``decode_export``.

Spec §1.9 and §2.1. Latents are 64 channels at 44.1 kHz / 2048 = 21.533 frames/s; the encoder
returns 128 channels (mean ‖ scale). Decoding a whole 95 s song at once is the VRAM peak, so both
directions run in overlapping windows (128 frames, 32 overlap, as upstream's ``--chunked``). We
drop the outer quarter of each overlap and crossfade the middle half linearly (upstream trims 16
frames and hard-cuts), and we handle inputs shorter than one window (upstream's chunked encode
raises ``NameError`` there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from models.engine import Audio

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100
HOP = 2048  # audio samples per latent frame
LATENT_DIM = 64
CHUNK_FRAMES = 128  # 5.94 s per window
OVERLAP_FRAMES = 32
SOURCE_PEAK_DB = -6.0  # upstream normalises edit sources to -6 dBFS before encoding


class LatentCodec(Protocol):
    """Audio <-> latents. ``encode``: [B, 2, N] -> (mean, scale) [B, 64, N/2048] each."""

    def encode(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


def _windows(length: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) frame windows covering ``length``; the last one is aligned to the end."""
    if length <= chunk:
        return [(0, length)]
    hop = chunk - overlap
    starts = [*list(range(0, length - chunk, hop)), length - chunk]
    return [(s, s + chunk) for s in starts]


def _ramp_weights(
    start: int, end: int, length: int, overlap: int, scale: int, device: torch.device
) -> torch.Tensor:
    """Per-output-sample weights of one window.

    At an interior edge the outer quarter of the overlap gets weight 0 (a window's edge lacks
    context, which is why upstream trims 16 frames), the middle half a linear ramp, so two
    windows overlapping by exactly ``overlap`` frames crossfade with weights summing to 1.
    """
    n = (end - start) * scale
    w = torch.ones(n, device=device)
    margin = (overlap // 4) * scale
    ramp_len = max(overlap * scale - 2 * margin, 1)
    ramp = (torch.arange(ramp_len, device=device, dtype=torch.float32) + 0.5) / ramp_len
    edge = torch.cat((torch.zeros(margin, device=device), ramp))[:n]  # rising edge
    if start > 0:
        w[: edge.numel()] = edge
    if end < length:
        tail = edge.flip(0)
        w[n - tail.numel() :] = torch.minimum(w[n - tail.numel() :], tail)
    return w


def chunked(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    frames: int,
    in_per_frame: int,
    out_per_frame: int,
    chunk: int = CHUNK_FRAMES,
    overlap: int = OVERLAP_FRAMES,
) -> torch.Tensor:
    """Apply ``fn`` over overlapping windows of ``frames`` frames and crossfade the results.

    ``x`` is [B, C, frames * in_per_frame]; ``fn`` maps a window of f frames to
    [B, C', f * out_per_frame].
    """
    spans = _windows(frames, chunk, overlap)
    if len(spans) == 1:
        return fn(x)
    out: torch.Tensor | None = None
    total: torch.Tensor | None = None
    for start, end in spans:
        piece = fn(x[..., start * in_per_frame : end * in_per_frame]).float()
        w = _ramp_weights(start, end, frames, overlap, out_per_frame, piece.device)
        if out is None:
            out = piece.new_zeros(*piece.shape[:-1], frames * out_per_frame)
            total = piece.new_zeros(frames * out_per_frame)
        sl = slice(start * out_per_frame, end * out_per_frame)
        out[..., sl] += piece * w
        total[sl] += w
    assert out is not None and total is not None
    return out / total.clamp_min(1e-8)


class TorchScriptVAE:
    """The official VAE file; runs in fp32 (upstream decodes in fp32 too)."""

    def __init__(
        self,
        path: Path,
        device: str | torch.device = "cpu",
        *,
        chunk: int = CHUNK_FRAMES,
        overlap: int = OVERLAP_FRAMES,
    ) -> None:
        self.device = torch.device(device)
        self.chunk, self.overlap = chunk, overlap
        self.module = torch.jit.load(str(path), map_location=self.device).eval()
        for method in ("encode_export", "decode_export"):
            if not hasattr(self.module, method):
                raise ValueError(f"{path} is not a DiffRhythm VAE: it has no {method}()")

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, 64, T] -> [B, 2, T * 2048] audio in fp32."""
        z = latents.to(self.device, torch.float32)
        return chunked(
            self.module.decode_export,
            z,
            frames=z.shape[-1],
            in_per_frame=1,
            out_per_frame=HOP,
            chunk=self.chunk,
            overlap=self.overlap,
        )

    @torch.inference_mode()
    def encode(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 2, N] -> (mean, scale), each [B, 64, ceil(N / 2048)]; pads N up to the hop."""
        x = audio.to(self.device, torch.float32)
        pad = (-x.shape[-1]) % HOP
        if pad:
            x = F.pad(x, (0, pad))
        frames = x.shape[-1] // HOP
        if frames == 0:
            raise ValueError("cannot encode empty audio")
        h = chunked(
            self.module.encode_export,
            x,
            frames=frames,
            in_per_frame=HOP,
            out_per_frame=1,
            chunk=self.chunk,
            overlap=self.overlap,
        )
        mean, scale = h.chunk(2, dim=1)
        return mean, scale


def posterior_sample(
    mean: torch.Tensor, scale: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Upstream's ``vae_sample``: ``mean + N(0,1) * (softplus(scale) + 1e-4)``."""
    std = F.softplus(scale) + 1e-4
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device="cpu")
    return mean + noise.to(mean.device) * std


def to_model_audio(audio: Audio, *, peak_db: float = SOURCE_PEAK_DB) -> torch.Tensor:
    """Any ``Audio`` -> [1, 2, N] float32 at 44.1 kHz, stereo, peak-normalised to ``peak_db``."""
    samples = np.asarray(audio.samples, dtype=np.float32)
    if audio.sample_rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples.T, audio.sample_rate, SAMPLE_RATE).T.astype(np.float32)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    elif samples.shape[0] > 2:
        samples = samples[:2]
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 0:
        samples = samples * (10 ** (peak_db / 20) / peak)
    return torch.from_numpy(np.ascontiguousarray(samples))[None]


def peak_normalise(audio: torch.Tensor) -> torch.Tensor:
    """Upstream output: divide by the peak (0 dBFS), clamp to [-1, 1]. audio: [C, N]."""
    peak = audio.abs().max()
    if peak > 0:
        audio = audio / peak
    return audio.clamp(-1.0, 1.0)
