"""Reading and converting DiT checkpoints: the only place that reads DiT weights.

Strict by design (spec §3.2, §7.1): upstream loads with ``strict=False`` after ``model.half()``,
which silently ignores a wrong file. We build on the meta device, read with ``mmap=True,
weights_only=True``, refuse any missing, unexpected or mis-shaped key with a message that names
them, and only then ``load_state_dict(..., assign=True)``.

Accepted files: ``cfm_model.pt`` (a torch zip holding ``model_state_dict``, or an EMA checkpoint
with ``ema_model_state_dict``), or ``model.safetensors`` holding the bare state dict.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

import torch

from models.diffrhythm.dit import DiffRhythmModel, DiTConfig, count_parameters

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
PT_FILE = "cfm_model.pt"
SAFETENSORS_FILE = "model.safetensors"
# Derived buffers upstream keeps (non-persistent, but tolerate them in hand-made files) and EMA
# bookkeeping; none of them are weights.
IGNORED_SUFFIXES = (".rotary_emb.inv_freq", ".freqs_cis")
IGNORED_KEYS = frozenset({"initted", "step"})
_REPORT_LIMIT = 12  # keys named per category in an error message


class CheckpointError(Exception):
    """The checkpoint does not match the DiffRhythm architecture or cannot be read."""


def read_config(path: Path, *, max_frames: int) -> DiTConfig:
    """Parse ``config.json`` (flat or wrapped as ``{"model": {...}}``) into a ``DiTConfig``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read DiT config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"DiT config {path} is not a JSON object")
    params = raw.get("model", raw)
    if not isinstance(params, dict):
        raise CheckpointError(f"DiT config {path}: 'model' is not an object")
    known = {f.name for f in fields(DiTConfig) if f.init}
    unknown = sorted(set(params) - known)
    if unknown:
        log.debug("ignoring config keys %s in %s", unknown, path)
    values = {k: v for k, v in params.items() if k in known}
    values.setdefault("max_frames", max_frames)
    try:
        return DiTConfig(**values)
    except (TypeError, AssertionError) as exc:
        raise CheckpointError(f"invalid DiT config {path}: {exc}") from exc


def find_weights(dit_dir: Path) -> Path | None:
    """The weights file in a DiT directory: safetensors preferred (faster, no pickle)."""
    for name in (SAFETENSORS_FILE, PT_FILE):
        if (dit_dir / name).is_file():
            return dit_dir / name
    return None


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The bare state dict inside an upstream ``.pt`` container."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict, got {type(obj).__name__}")
    if "model_state_dict" in obj:
        state = obj["model_state_dict"]
    elif "ema_model_state_dict" in obj:
        state = {
            k.removeprefix("ema_model."): v
            for k, v in obj["ema_model_state_dict"].items()
            if k not in IGNORED_KEYS
        }
    elif all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        raise CheckpointError(
            f"{path}: no 'model_state_dict' or 'ema_model_state_dict' (keys: {sorted(obj)[:8]})"
        )
    return dict(state)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file on CPU, memory-mapped where the format allows."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = _unwrap(
                torch.load(path, map_location="cpu", mmap=True, weights_only=True), path
            )
    except CheckpointError:
        raise
    except Exception as exc:  # torch/safetensors raise many types for corrupt files
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    return {
        k: v for k, v in state.items() if k not in IGNORED_KEYS and not k.endswith(IGNORED_SUFFIXES)
    }


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_REPORT_LIMIT])
    return shown + (f" and {len(keys) - _REPORT_LIMIT} more" if len(keys) > _REPORT_LIMIT else "")


def verify_keys(
    expected: Mapping[str, tuple[int, ...]], state: Mapping[str, torch.Tensor], source: str
) -> None:
    """Raise ``CheckpointError`` naming every missing, unexpected or mis-shaped key."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k])}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k])
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_names(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} keys with wrong shapes: {_names(wrong)}")
    if problems:
        raise CheckpointError(
            f"{source} does not match the DiT ({len(expected)} keys): " + "; ".join(problems)
        )


def build_meta(cfg: DiTConfig) -> DiffRhythmModel:
    """The model on the meta device: no memory, used for loading and for the key manifest."""
    with torch.device("meta"):
        return DiffRhythmModel(cfg)


def manifest(cfg: DiTConfig) -> dict[str, list[int]]:
    """Key -> shape of the model's state dict (the golden manifest of the tests)."""
    return {k: list(v.shape) for k, v in build_meta(cfg).state_dict().items()}


def load_model(
    dit_dir: Path,
    *,
    max_frames: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> DiffRhythmModel:
    """Build the DiT described by ``dit_dir/config.json`` and load its weights strictly."""
    cfg = read_config(dit_dir / CONFIG_FILE, max_frames=max_frames)
    path = find_weights(dit_dir)
    if path is None:
        raise CheckpointError(f"no {SAFETENSORS_FILE} or {PT_FILE} in {dit_dir}")
    model = build_meta(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = read_state_dict(path)
    verify_keys(expected, state, str(path))
    model.load_state_dict(state, strict=True, assign=True)
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    log.info(
        "loaded DiT %s: %d keys, %d parameters, max_frames %d, %s on %s",
        path,
        len(expected),
        count_parameters(model),
        cfg.max_frames,
        dtype,
        device,
    )
    return model


def convert_to_safetensors(src: Path, dst: Path) -> int:
    """Write ``src`` (.pt) as a bare-state-dict safetensors file; returns the number of keys."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in read_state_dict(src).items()}
    save_file(state, str(dst), metadata={"format": "pt", "source": src.name})
    log.info("wrote %s (%d tensors)", dst, len(state))
    return len(state)


def main(argv: list[str] | None = None) -> int:
    """``python -m models.diffrhythm.checkpoint SRC.pt DST.safetensors``."""
    parser = argparse.ArgumentParser(
        description="Convert a DiffRhythm cfm_model.pt to safetensors."
    )
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        convert_to_safetensors(args.src, args.dst)
    except CheckpointError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
