"""A complete tiny model directory with random weights, in the official formats and layout.

For tests and for the service's end-to-end runs without the 10 GB of real weights: the DiTs are
the ``tiny`` presets saved as upstream does (a torch zip ``cfm_model.pt`` holding fp16 tensors under
``model_state_dict``, plus ``config.json``), the VAE is a scripted module saved with
``torch.jit.save`` exposing ``encode_export``/``decode_export``, and ``style.json`` selects the
TEST-ONLY hashed style encoder. The audio it produces is noise-like; only the plumbing is real.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.diffrhythm import weights
from models.diffrhythm.dit import DiffRhythmModel, DiTConfig
from models.diffrhythm.style import HASHED_KIND

log = logging.getLogger(__name__)

# espeak-ng en-us phones (no stress marks), so English lyrics map to real ids in tests.
ENGLISH_PHONES = tuple(
    "aɪ aɪɚ aʊ b d dʒ eɪ f h i iə iː j k l m n n̩ oʊ p s t tʃ uː v w z æ ð ŋ ɑː ɑːɹ ɔ ɔɪ ɔː "  # noqa: SIM905
    "ə əl ɚ ɛ ɛɹ ɜː ɡ ɪ ɪɹ ɹ ɾ ʃ ʊ ʊɹ ʌ ʒ ʔ θ ᵻ oːɹ ɔːɹ tɹ dɹ".split()
)


class TinyVAE(nn.Module):
    """A strided-conv autoencoder with the VAE's geometry: hop 2048, 64 latents, 2 channels."""

    def __init__(self) -> None:
        super().__init__()
        # kernel 2 hops with half-hop padding: neighbouring frames overlap, like a real decoder
        self.enc = nn.Conv1d(2, 128, kernel_size=4096, stride=2048, padding=1024)
        self.dec = nn.ConvTranspose1d(64, 2, kernel_size=4096, stride=2048, padding=1024)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_export(z)

    @torch.jit.export
    def encode_export(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, 2, N] -> [B, 128, N / 2048] (mean ‖ scale)."""
        return self.enc(audio)

    @torch.jit.export
    def decode_export(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, 64, T] -> [B, 2, T * 2048]."""
        return torch.tanh(self.dec(latents))


def tiny_vocab() -> dict[str, int]:
    """363 phones: "," and "." first (model ids 1 and 2, as upstream), English phones, fillers."""
    phones = [",", ".", "!", "?", "_", *ENGLISH_PHONES]
    phones += [f"<unused{i}>" for i in range(weights.VOCAB_SIZE - len(phones))]
    return {p: i for i, p in enumerate(phones)}


def _write_dit(dest: Path, preset: str, seed: int) -> None:
    cfg = DiTConfig.from_name(preset)
    torch.manual_seed(seed)
    model = DiffRhythmModel(cfg)
    with torch.no_grad():  # GRN starts at zero; give it weights so the path is exercised
        for name, param in model.named_parameters():
            if name.endswith(("grn.gamma", "grn.beta")):
                param.normal_(0, 0.1)
    dest.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() for k, v in model.state_dict().items()}
    torch.save({"model_state_dict": state}, dest / "cfm_model.pt")
    keys = (
        "dim", "depth", "heads", "ff_mult", "text_dim", "cond_dim", "conv_layers",
        "conv_pos_groups", "mel_dim", "text_num_embeds",
    )  # fmt: skip
    config = {"model_type": "diffrhythm-tiny-random", "model": {k: getattr(cfg, k) for k in keys}}
    (dest / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


def write_tiny_model_dir(dest: Path, *, seed: int = 0, full: bool = True) -> Path:
    """Create the tiny directory at ``dest`` (base and, unless ``full=False``, full DiTs)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _write_dit(dest / weights.DIT_DIRS["base"], "tiny", seed)
    if full:
        _write_dit(dest / weights.DIT_DIRS["full"], "tiny-full", seed + 1)
    torch.manual_seed(seed + 2)
    vae = TinyVAE()
    with torch.no_grad():
        vae.dec.weight.mul_(4.0)
    (dest / weights.VAE_FILE).parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(vae), str(dest / weights.VAE_FILE))
    (dest / weights.VOCAB_FILE).parent.mkdir(parents=True, exist_ok=True)
    (dest / weights.VOCAB_FILE).write_text(
        json.dumps({"vocab": tiny_vocab()}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8"
    )
    rng = np.random.default_rng(seed)
    negative = rng.standard_normal((1, 512)).astype(np.float32)
    np.save(dest / weights.NEGATIVE_STYLE_FILE, negative / np.linalg.norm(negative))
    (dest / weights.STYLE_CONFIG_FILE).write_text(
        json.dumps({"encoder": HASHED_KIND, "seed": seed}) + "\n", encoding="utf-8"
    )
    (dest / "README-tiny.txt").write_text(
        "Tiny DiffRhythm-shaped model with RANDOM weights, for tests only. It makes noise.\n",
        encoding="utf-8",
    )
    log.info("wrote tiny DiffRhythm model directory %s", dest)
    return dest
