"""Style conditioning: a 512-d, L2-normalised embedding of a caption or a reference clip.

Spec §1.4 and §1.5. The real encoder is MuQ-MuLan-large through the ``muq`` package, loaded from
local directories only (``mulan/MuQ-MuLan-large``, ``mulan/MuQ-large-msd-iter``,
``mulan/xlm-roberta-base``). Its weights are CC-BY-NC-4.0 (non-commercial).

``HashedStyleEncoder`` is a deterministic stand-in FOR TESTS ONLY: a hashed bag-of-words
projection for captions and band-energy statistics for audio. It carries no musical meaning; the
tiny test model directory selects it in ``style.json``. Never use it with the real DiT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from models.engine import Audio

log = logging.getLogger(__name__)

STYLE_DIM = 512
STYLE_SAMPLE_RATE = 24000  # MuQ-MuLan input rate
CLIP_SECONDS = 10.0  # upstream takes a 10 s window from the middle of the reference
MULAN_KIND = "muq-mulan"
HASHED_KIND = "hashed-bow-test"


class StyleError(ValueError):
    """The style input cannot be embedded (for example a reference that is too short)."""


class StyleEncoder(Protocol):
    """Caption or reference audio -> [1, 512] float32, L2-normalised, on CPU or the model device."""

    def embed_text(self, text: str) -> torch.Tensor: ...

    def embed_audio(self, audio: Audio) -> torch.Tensor: ...


def reference_clip(audio: Audio, *, min_seconds: float = CLIP_SECONDS) -> np.ndarray:
    """Mono 24 kHz float32 [n]: the 10 s window centred on the middle, as upstream.

    Upstream asserts on clips shorter than 10 s; we refuse those shorter than ``min_seconds``
    and loop-pad the rest up to 10 s.
    """
    if audio.duration < min_seconds:
        raise StyleError(
            f"reference audio is {audio.duration:.1f} s; at least {min_seconds:.0f} s is needed"
        )
    mono = np.asarray(audio.samples, dtype=np.float32).mean(axis=0)
    if audio.sample_rate != STYLE_SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, audio.sample_rate, STYLE_SAMPLE_RATE).astype(np.float32)
    n = int(CLIP_SECONDS * STYLE_SAMPLE_RATE)
    if mono.shape[0] < n:
        mono = np.resize(mono, n)  # loop-pad
    start = max(0, mono.shape[0] // 2 - n // 2)
    return np.ascontiguousarray(mono[start : start + n])


def load_negative_style(path: Path) -> torch.Tensor:
    """The fixed negative prompt (upstream ``vocal.npy``): [1, 512] float32."""
    try:
        vec = np.load(path).astype(np.float32).reshape(1, -1)
    except (OSError, ValueError) as exc:
        raise StyleError(f"cannot read the negative style {path}: {exc}") from exc
    if vec.shape != (1, STYLE_DIM):
        raise StyleError(f"negative style {path} has shape {vec.shape}, expected (1, {STYLE_DIM})")
    return torch.from_numpy(vec)


def _unit(vec: torch.Tensor) -> torch.Tensor:
    return F.normalize(vec.float(), dim=-1)


class HashedStyleEncoder:
    """TEST-ONLY deterministic style encoder; see the module docstring."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        gen = torch.Generator().manual_seed(seed + 1)
        self._bands = torch.randn(16, STYLE_DIM, generator=gen)

    def _word_vector(self, word: str) -> torch.Tensor:
        digest = hashlib.blake2b(f"{self.seed}:{word}".encode(), digest_size=8).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
        return torch.randn(STYLE_DIM, generator=gen)

    def embed_text(self, text: str) -> torch.Tensor:
        words = re.findall(r"\w+", text.lower()) or ["<empty>"]
        return _unit(torch.stack([self._word_vector(w) for w in words]).sum(0, keepdim=True))

    def embed_audio(self, audio: Audio) -> torch.Tensor:
        clip = torch.from_numpy(reference_clip(audio, min_seconds=1.0))
        spec = torch.stft(clip, 1024, 512, window=torch.hann_window(1024), return_complex=True)
        power = spec.abs().pow(2).mean(dim=1)  # [freq]
        bands = torch.stack([b.mean() for b in power.chunk(16)])
        return _unit((torch.log1p(bands * 1e3) @ self._bands)[None])


class MuLanStyleEncoder:
    """MuQ-MuLan-large from local directories; fp32, kept resident on ``device``."""

    def __init__(self, mulan_root: Path, device: str | torch.device = "cpu") -> None:
        try:
            from muq import MuQMuLan
        except ImportError as exc:
            raise StyleError(
                "the MuQ-MuLan style encoder needs the optional 'muq' package "
                f"(pip install muq): {exc}"
            ) from exc
        model_dir = mulan_root / "MuQ-MuLan-large"
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        # The muq code loads its towers by name; local paths keep it offline. The names must
        # keep the substrings "muq" and "xlm-roberta", which the package tests for.
        config["audio_model"]["name"] = str(mulan_root / "MuQ-large-msd-iter")
        config["text_model"]["name"] = str(mulan_root / "xlm-roberta-base")
        self.device = torch.device(device)
        self.model = (
            MuQMuLan.from_pretrained(str(model_dir), config=config, local_files_only=True)
            .to(self.device)
            .eval()
        )
        log.info("loaded MuQ-MuLan from %s on %s", mulan_root, self.device)

    @torch.inference_mode()
    def embed_text(self, text: str) -> torch.Tensor:
        return _unit(self.model(texts=[text]).float())

    @torch.inference_mode()
    def embed_audio(self, audio: Audio) -> torch.Tensor:
        clip = torch.from_numpy(reference_clip(audio))[None].to(self.device)
        return _unit(self.model(wavs=clip).float())


def load_style_encoder(models_dir: Path, device: str | torch.device = "cpu") -> StyleEncoder:
    """The encoder ``style.json`` names (MuQ-MuLan when the file is absent)."""
    kind, seed = MULAN_KIND, 0
    path = models_dir / "style.json"
    if path.is_file():
        raw = json.loads(path.read_text(encoding="utf-8"))
        kind, seed = raw.get("encoder", MULAN_KIND), int(raw.get("seed", 0))
    if kind == HASHED_KIND:
        log.warning("using the TEST-ONLY hashed style encoder from %s", path)
        return HashedStyleEncoder(seed)
    if kind == MULAN_KIND:
        return MuLanStyleEncoder(models_dir / "mulan", device)
    raise StyleError(f"{path}: unknown style encoder {kind!r}")
