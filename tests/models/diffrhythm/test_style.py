"""Style encoders: the test-only hashed one, the MuQ-MuLan adapter (against a fake ``muq``)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from models.diffrhythm.style import (
    STYLE_SAMPLE_RATE,
    HashedStyleEncoder,
    MuLanStyleEncoder,
    StyleError,
    load_negative_style,
    load_style_encoder,
    reference_clip,
)
from models.engine import Audio


def _noise(seconds: float, sr: int = 44100, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio(rng.standard_normal((2, int(seconds * sr))).astype(np.float32) * 0.1, sr)


def test_hashed_encoder_is_deterministic_and_unit_norm() -> None:
    enc = HashedStyleEncoder(seed=0)
    a = enc.embed_text("Dreamy synth pop")
    assert a.shape == (1, 512)
    assert torch.allclose(a.norm(dim=-1), torch.ones(1))
    assert torch.equal(a, HashedStyleEncoder(seed=0).embed_text("dreamy  synth POP"))
    assert not torch.allclose(a, enc.embed_text("heavy metal"))
    assert enc.embed_text("").shape == (1, 512)
    b = enc.embed_audio(_noise(3.0))
    assert b.shape == (1, 512) and torch.allclose(b.norm(dim=-1), torch.ones(1))


def test_reference_clip_takes_the_middle_ten_seconds() -> None:
    sr = STYLE_SAMPLE_RATE
    ramp = np.arange(30 * sr, dtype=np.float32)[None].repeat(2, axis=0)
    clip = reference_clip(Audio(ramp, sr))
    assert clip.shape == (10 * sr,)
    assert clip[0] == 10 * sr and clip[-1] == 20 * sr - 1
    with pytest.raises(StyleError, match="at least 10 s"):
        reference_clip(Audio(ramp[:, : 5 * sr], sr))
    short = reference_clip(Audio(ramp[:, : 5 * sr], sr), min_seconds=1.0)  # loop-padded
    assert short.shape == (10 * sr,)


def test_negative_style_file(tmp_path: Path) -> None:
    np.save(tmp_path / "ok.npy", np.ones((1, 512), dtype=np.float32))
    assert load_negative_style(tmp_path / "ok.npy").shape == (1, 512)
    np.save(tmp_path / "bad.npy", np.ones((3,), dtype=np.float32))
    with pytest.raises(StyleError, match="expected"):
        load_negative_style(tmp_path / "bad.npy")


def test_mulan_adapter_loads_offline_from_local_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, object] = {}

    class FakeMuLan(torch.nn.Module):
        @classmethod
        def from_pretrained(cls, path: str, **kwargs: object) -> FakeMuLan:
            calls["path"], calls["kwargs"] = path, kwargs
            return cls()

        def forward(
            self, wavs: torch.Tensor | None = None, texts: list[str] | None = None
        ) -> torch.Tensor:
            calls["wavs" if wavs is not None else "texts"] = wavs if wavs is not None else texts
            return torch.full((1, 512), 3.0)

    monkeypatch.setitem(sys.modules, "muq", types.SimpleNamespace(MuQMuLan=FakeMuLan))
    root = tmp_path / "mulan"
    (root / "MuQ-MuLan-large").mkdir(parents=True)
    config = {
        "audio_model": {"name": "OpenMuQ/MuQ-large-msd-iter"},
        "text_model": {"name": "xlm-roberta-base"},
    }
    (root / "MuQ-MuLan-large" / "config.json").write_text(json.dumps(config))

    enc = load_style_encoder(tmp_path)  # no style.json: MuQ-MuLan
    assert isinstance(enc, MuLanStyleEncoder)
    kwargs = calls["kwargs"]
    assert calls["path"] == str(root / "MuQ-MuLan-large")
    assert kwargs["local_files_only"] is True  # type: ignore[index]
    names = kwargs["config"]  # type: ignore[index]
    assert names["audio_model"]["name"] == str(root / "MuQ-large-msd-iter")
    assert names["text_model"]["name"] == str(root / "xlm-roberta-base")
    vec = enc.embed_text("lofi hip hop")
    assert calls["texts"] == ["lofi hip hop"]
    assert torch.allclose(vec.norm(dim=-1), torch.ones(1))
    enc.embed_audio(_noise(12.0))
    assert calls["wavs"].shape == (1, 10 * STYLE_SAMPLE_RATE)  # type: ignore[union-attr]


def test_mulan_without_the_package_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "muq", None)  # import fails
    with pytest.raises(StyleError, match="optional 'muq' package"):
        load_style_encoder(tmp_path)
    (tmp_path / "style.json").write_text('{"encoder": "magic"}')
    with pytest.raises(StyleError, match="unknown style encoder"):
        load_style_encoder(tmp_path)
