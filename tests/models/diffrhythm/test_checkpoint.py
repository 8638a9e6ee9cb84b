"""Strict loading of tiny checkpoints saved in the official formats, and the converter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models.diffrhythm.checkpoint import (
    CheckpointError,
    convert_to_safetensors,
    load_model,
    main,
    read_config,
    read_state_dict,
)
from models.diffrhythm.dit import DiffRhythmModel, DiTConfig


def _save_dir(
    tmp_path: Path, preset: str = "tiny", payload: str = "model_state_dict"
) -> tuple[Path, DiffRhythmModel]:
    torch.manual_seed(1)
    model = DiffRhythmModel(DiTConfig.from_name(preset)).eval()
    d = tmp_path / preset
    d.mkdir()
    cfg = model.cfg
    params = {
        k: getattr(cfg, k)
        for k in (
            "dim",
            "depth",
            "heads",
            "ff_mult",
            "text_dim",
            "cond_dim",
            "conv_layers",
            "conv_pos_groups",
        )
    }
    (d / "config.json").write_text(json.dumps({"model": params}), encoding="utf-8")
    state = model.state_dict()
    if payload == "ema_model_state_dict":
        state = {f"ema_model.{k}": v for k, v in state.items()} | {
            "initted": torch.tensor(True),
            "step": torch.tensor(3),
        }
    torch.save({payload: state}, d / "cfm_model.pt")
    return d, model


def _forward(model: DiffRhythmModel) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    cfg = model.cfg
    x = torch.randn(2, 24, cfg.mel_dim, generator=gen)
    tokens = torch.randint(0, 364, (2, 24), generator=gen)
    dur = torch.full((2,), 0.5) if cfg.duration_embed else None
    with torch.no_grad():
        return model(x, torch.zeros_like(x), model.embed_text(tokens), torch.tensor([0.2, 0.7]),
                     torch.randn(2, 512, generator=gen), torch.zeros(2), dur)  # fmt: skip


@pytest.mark.parametrize("payload", ["model_state_dict", "ema_model_state_dict"])
def test_pt_checkpoint_round_trip(tmp_path: Path, payload: str) -> None:
    d, model = _save_dir(tmp_path, payload=payload)
    loaded = load_model(d, max_frames=2048)
    assert not any(p.requires_grad for p in loaded.parameters())
    torch.testing.assert_close(_forward(loaded), _forward(model), rtol=0, atol=0)


def test_safetensors_converter_round_trip(tmp_path: Path) -> None:
    d, model = _save_dir(tmp_path, preset="tiny-full")
    assert main([str(d / "cfm_model.pt"), str(d / "model.safetensors")]) == 0
    (d / "cfm_model.pt").unlink()
    loaded = load_model(d, max_frames=6144)
    assert loaded.cfg.duration_embed
    torch.testing.assert_close(_forward(loaded), _forward(model), rtol=0, atol=0)


def test_fp16_checkpoint_loads_into_fp32(tiny_dir: Path) -> None:
    state = read_state_dict(tiny_dir / "dit-base" / "cfm_model.pt")
    assert {v.dtype for v in state.values()} == {torch.float16}  # as the official file
    model = load_model(tiny_dir / "dit-base", max_frames=2048, dtype=torch.float32)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path: Path) -> None:
    d, model = _save_dir(tmp_path)
    state = model.state_dict()
    del state["transformer.proj_out.bias"]
    state["transformer.extra.weight"] = torch.zeros(3)
    state["transformer.norm_out.linear.bias"] = torch.zeros(5)
    torch.save({"model_state_dict": state}, d / "cfm_model.pt")
    with pytest.raises(CheckpointError) as info:
        load_model(d, max_frames=2048)
    message = str(info.value)
    assert "1 missing keys: transformer.proj_out.bias" in message
    assert "1 unexpected keys: transformer.extra.weight" in message
    assert "transformer.norm_out.linear.bias (5,) != (64,)" in message


def test_full_checkpoint_in_the_base_directory_is_refused(tmp_path: Path) -> None:
    d, _ = _save_dir(tmp_path, preset="tiny-full")
    with pytest.raises(
        CheckpointError, match=r"4 unexpected keys: transformer.duration_time_embed"
    ):
        load_model(d, max_frames=2048)


def test_unreadable_files_give_checkpoint_errors(tmp_path: Path) -> None:
    d, _ = _save_dir(tmp_path)
    (d / "cfm_model.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model(d, max_frames=2048)
    torch.save({"optimizer": {}}, d / "cfm_model.pt")
    with pytest.raises(CheckpointError, match="no 'model_state_dict'"):
        load_model(d, max_frames=2048)
    (d / "cfm_model.pt").unlink()
    with pytest.raises(CheckpointError, match=r"no model.safetensors or cfm_model.pt"):
        load_model(d, max_frames=2048)


def test_config_flat_or_wrapped_and_invalid(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    official = {"dim": 2048, "depth": 16, "heads": 32, "ff_mult": 4, "text_dim": 512,
                "conv_layers": 4, "mel_dim": 64, "text_num_embeds": 363}  # fmt: skip
    path.write_text(json.dumps(official))
    assert read_config(path, max_frames=2048) == DiTConfig.from_name("base")
    path.write_text(json.dumps({"model_type": "x", "model": official}))
    assert read_config(path, max_frames=6144) == DiTConfig.from_name("full")
    path.write_text(json.dumps({"dim": 100, "heads": 3}))
    with pytest.raises(CheckpointError, match="not divisible by heads"):
        read_config(path, max_frames=2048)


def test_converter_on_a_copy_of_the_tiny_directory(tiny_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "dit"
    shutil.copytree(tiny_dir / "dit-base", d)
    count = convert_to_safetensors(d / "cfm_model.pt", d / "model.safetensors")
    assert count == 49
