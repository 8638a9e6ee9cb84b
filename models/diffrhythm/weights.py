"""The models directory: its layout, an offline ``check``, and ``download`` from the HF hub.

Layout (spec §3.3, a flat directory instead of the hub cache)::

    dit-base/{config.json, cfm_model.pt | model.safetensors}   ASLP-lab/DiffRhythm-1_2 (<= 95 s)
    dit-full/{config.json, cfm_model.pt | model.safetensors}   ASLP-lab/DiffRhythm-1_2-full (285 s)
    vae/vae_model.pt                                           ASLP-lab/DiffRhythm-vae (TorchScript)
    mulan/MuQ-MuLan-large/{config.json, weights}               OpenMuQ/MuQ-MuLan-large
    mulan/MuQ-large-msd-iter/{config.json, weights}            OpenMuQ/MuQ-large-msd-iter
    mulan/xlm-roberta-base/{config.json, weights, tokenizer}   FacebookAI/xlm-roberta-base
    g2p/vocab.json                                             phone vocabulary (363 phones)
    negative_style.npy                                         the negative style prompt [1, 512]
    style.json                                                 optional: which style encoder

At least one of ``dit-base`` / ``dit-full`` is needed. This module imports neither torch nor
huggingface_hub at import time: the engine registry calls ``check`` in the API process.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DIT_DIRS = {"base": "dit-base", "full": "dit-full"}
DIT_MAX_FRAMES = {"base": 2048, "full": 6144}
DIT_WEIGHT_FILES = ("model.safetensors", "cfm_model.pt")
VAE_FILE = "vae/vae_model.pt"
VOCAB_FILE = "g2p/vocab.json"
NEGATIVE_STYLE_FILE = "negative_style.npy"
STYLE_CONFIG_FILE = "style.json"
MULAN_DIR = "mulan"
VOCAB_SIZE = 363
DEFAULT_MODELS_DIR = "./models-data"

# What the MuQ-MuLan encoder needs in each local directory: groups of alternatives.
MULAN_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "MuQ-MuLan-large": (("config.json",), ("model.safetensors", "pytorch_model.bin")),
    "MuQ-large-msd-iter": (("config.json",), ("model.safetensors", "pytorch_model.bin")),
    "xlm-roberta-base": (
        ("config.json",),
        ("model.safetensors", "pytorch_model.bin"),
        ("sentencepiece.bpe.model", "tokenizer.json"),
    ),
}


# ---------------------------------------------------------------------------- check


def expected_dit_keys(params: dict[str, object], max_frames: int) -> int:
    """State-dict key count for a DiT config (219 base / 223 full for the official one)."""
    depth = int(params.get("depth", 16))  # type: ignore[call-overload]
    conv_layers = int(params.get("conv_layers", 4))  # type: ignore[call-overload]
    duration = params.get("duration_embed")
    has_duration = max_frames == 6144 if duration is None else bool(duration)
    time_embeds = 3 if has_duration else 2
    return (
        4 * time_embeds  # time_mlp.{0,2}.{weight,bias}
        + 1  # text embedding table
        + 10 * conv_layers  # ConvNeXt-V2 blocks
        + 2
        + 4  # input projection, conv position embedding
        + 9 * depth  # Llama blocks
        + 2 * (depth // 2)  # text fusion linears
        + 2
        + 2  # norm_out.linear, proj_out
    )


def safetensors_keys(path: Path) -> list[str]:
    """Tensor names from a safetensors header, without reading the tensors."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        if size > 100_000_000:
            raise ValueError(f"header of {size} bytes is implausible")
        header = json.loads(f.read(size))
    return [k for k in header if k != "__metadata__"]


def _check_dit(models_dir: Path, variant: str) -> list[str]:
    d = models_dir / DIT_DIRS[variant]
    problems: list[str] = []
    try:
        raw = json.loads((d / "config.json").read_text(encoding="utf-8"))
        params = raw.get("model", raw) if isinstance(raw, dict) else None
        if not isinstance(params, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return [f"{d / 'config.json'} is missing"]
    except (OSError, ValueError) as exc:
        return [f"{d / 'config.json'} is invalid: {exc}"]
    weights = next((d / n for n in DIT_WEIGHT_FILES if (d / n).is_file()), None)
    if weights is None:
        return [f"{d} has no DiT weights ({' or '.join(DIT_WEIGHT_FILES)})"]
    want = expected_dit_keys(params, DIT_MAX_FRAMES[variant])
    if weights.suffix == ".safetensors":
        try:
            have = len(safetensors_keys(weights))
        except (OSError, ValueError, struct.error) as exc:
            return [f"{weights} is not a readable safetensors file: {exc}"]
        if have != want:
            problems.append(f"{weights} has {have} tensors, the {variant} DiT needs {want}")
    elif not zipfile.is_zipfile(weights):
        problems.append(f"{weights} is not a torch zip checkpoint (truncated download?)")
    return problems


def _check_vocab(models_dir: Path) -> list[str]:
    path = models_dir / VOCAB_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        vocab = raw["vocab"]
        if not isinstance(vocab, dict):
            raise ValueError("'vocab' is not an object")
    except FileNotFoundError:
        return [f"{path} is missing (the g2p phone vocabulary)"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{path} is invalid: {exc}"]
    if len(vocab) != VOCAB_SIZE:
        return [f"{path} has {len(vocab)} phones, expected {VOCAB_SIZE}"]
    return []


def _check_negative_style(models_dir: Path) -> list[str]:
    path = models_dir / NEGATIVE_STYLE_FILE
    if not path.is_file():
        return [f"{path} is missing (the negative style prompt, upstream infer/example/vocal.npy)"]
    import numpy as np

    try:
        vec = np.load(path)
    except (OSError, ValueError) as exc:
        return [f"{path} is invalid: {exc}"]
    if vec.size != 512:
        return [f"{path} has {vec.size} values, expected 512"]
    return []


def style_kind(models_dir: Path) -> str:
    """The style encoder the directory selects (``muq-mulan`` unless ``style.json`` says)."""
    path = models_dir / STYLE_CONFIG_FILE
    if not path.is_file():
        return "muq-mulan"
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("encoder", "muq-mulan"))
    except (OSError, ValueError, AttributeError):
        return "invalid"


def _check_style(models_dir: Path) -> list[str]:
    kind = style_kind(models_dir)
    if kind == "hashed-bow-test":
        return []
    if kind != "muq-mulan":
        return [f"{models_dir / STYLE_CONFIG_FILE}: unknown style encoder {kind!r}"]
    problems = []
    for sub, groups in MULAN_FILES.items():
        d = models_dir / MULAN_DIR / sub
        for group in groups:
            if not any((d / name).is_file() for name in group):
                problems.append(f"{d} lacks {' or '.join(group)}")
    if importlib.util.find_spec("muq") is None:
        problems.append("the 'muq' package (MuQ-MuLan style encoder) is not installed")
    return problems


def check(models_dir: Path) -> list[str]:
    """What is missing or invalid for the DiffRhythm engine to run; empty when ready. Offline."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return [f"models directory {models_dir} does not exist"]
    problems: list[str] = []
    present = [v for v, name in DIT_DIRS.items() if (models_dir / name).exists()]
    if not present:
        problems.append(
            f"no DiT in {models_dir}: need {DIT_DIRS['base']}/ (<= 95 s) and/or "
            f"{DIT_DIRS['full']}/ (<= 285 s) with config.json and cfm_model.pt"
        )
    for variant in present:
        problems.extend(_check_dit(models_dir, variant))
    vae = models_dir / VAE_FILE
    if not vae.is_file():
        problems.append(f"{vae} is missing (the TorchScript VAE)")
    elif not zipfile.is_zipfile(vae):
        problems.append(f"{vae} is not a TorchScript archive (truncated download?)")
    problems.extend(_check_vocab(models_dir))
    problems.extend(_check_negative_style(models_dir))
    problems.extend(_check_style(models_dir))
    if importlib.util.find_spec("torch") is None:
        problems.append("torch is not installed")
    return problems


# ---------------------------------------------------------------------------- download


@dataclass(frozen=True)
class Fetch:
    """One file to fetch: the first of ``candidates`` the repository has lands at ``target``."""

    repo_id: str
    candidates: tuple[str, ...]
    target: str  # relative to the models directory
    repo_type: str = "model"
    optional: bool = False


# The DiffRhythm code repository is on GitHub, not the hub; its official Space carries the same
# tree, so the vocabulary and the negative style come from there.
SPACE = "ASLP-lab/DiffRhythm"


def plan(*, base: bool = True, full: bool = True, style: bool = True) -> list[Fetch]:
    """Every file ``download`` fetches, in order."""
    items: list[Fetch] = []
    for variant, repo in (
        ("base", "ASLP-lab/DiffRhythm-1_2"),
        ("full", "ASLP-lab/DiffRhythm-1_2-full"),
    ):
        if (variant == "base" and base) or (variant == "full" and full):
            d = DIT_DIRS[variant]
            items.append(Fetch(repo, ("config.json",), f"{d}/config.json"))
            items.append(Fetch(repo, ("cfm_model.pt",), f"{d}/cfm_model.pt"))
            items.append(Fetch(repo, ("LICENSE",), f"{d}/LICENSE", optional=True))
    items.append(Fetch("ASLP-lab/DiffRhythm-vae", ("vae_model.pt",), VAE_FILE))
    items.append(Fetch(SPACE, ("g2p/g2p/vocab.json",), VOCAB_FILE, repo_type="space"))
    items.append(
        Fetch(
            SPACE,
            ("infer/example/vocal.npy", "src/negative_prompt.npy"),
            NEGATIVE_STYLE_FILE,
            repo_type="space",
        )
    )
    if style:
        weights = ("model.safetensors", "pytorch_model.bin")
        for sub, repo in (
            ("MuQ-MuLan-large", "OpenMuQ/MuQ-MuLan-large"),
            ("MuQ-large-msd-iter", "OpenMuQ/MuQ-large-msd-iter"),
            ("xlm-roberta-base", "FacebookAI/xlm-roberta-base"),
        ):
            d = f"{MULAN_DIR}/{sub}"
            items.append(Fetch(repo, ("config.json",), f"{d}/config.json"))
            items.append(Fetch(repo, weights, f"{d}/{weights[0]}"))  # renamed below if .bin
            if sub == "xlm-roberta-base":
                for name in ("sentencepiece.bpe.model", "tokenizer.json", "tokenizer_config.json"):
                    items.append(Fetch(repo, (name,), f"{d}/{name}", optional=True))
    return items


FetchFile = Callable[..., str]


class DownloadError(Exception):
    """A required file could not be fetched."""


def _hub_download() -> FetchFile:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise DownloadError(
            "downloading needs huggingface_hub: pip install 'songqueue[hub]'"
        ) from exc
    return hf_hub_download


def _not_found_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "this repository has no such file" (then try the next candidate)."""
    try:
        from huggingface_hub import errors
    except ImportError:
        return (FileNotFoundError,)
    names = ("EntryNotFoundError", "RemoteEntryNotFoundError")
    return (FileNotFoundError, *(getattr(errors, n) for n in names if hasattr(errors, n)))


def download(
    models_dir: Path,
    *,
    full: bool = True,
    base: bool = True,
    style: bool = True,
    endpoint: str | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    fetch: FetchFile | None = None,
) -> None:
    """Fetch the repositories and lay them out as ``check`` expects; files present are kept.

    ``fetch`` defaults to ``huggingface_hub.hf_hub_download`` (it honours ``HF_ENDPOINT``);
    tests pass ``endpoint`` to a local fake of the hub.
    """
    models_dir = Path(models_dir)
    fetch = fetch or _hub_download()
    not_found = _not_found_errors()
    staging = models_dir / ".download"
    models_dir.mkdir(parents=True, exist_ok=True)
    for item in plan(base=base, full=full, style=style):
        target = models_dir / item.target
        if _already_there(target, item):
            log.info("have %s", item.target)
            continue
        path = None
        for filename in item.candidates:
            try:
                path = fetch(
                    repo_id=item.repo_id,
                    filename=filename,
                    repo_type=item.repo_type,
                    revision=revision,
                    local_dir=str(staging / item.repo_type / item.repo_id),
                    endpoint=endpoint,
                    token=token,
                )
                break
            except not_found:
                continue
        if path is None:
            if item.optional:
                log.info("skipped %s: not in %s", item.target, item.repo_id)
                continue
            raise DownloadError(f"{item.repo_id} has none of {', '.join(item.candidates)}")
        if Path(path).name.endswith(".bin") and target.name == "model.safetensors":
            target = target.with_name(Path(path).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        log.info("fetched %s/%s -> %s", item.repo_id, Path(path).name, target)
    shutil.rmtree(staging, ignore_errors=True)


def _already_there(target: Path, item: Fetch) -> bool:
    if target.is_file():
        return True
    # a weights file fetched under its alternative name (pytorch_model.bin)
    return any(
        (target.parent / name).is_file() for name in item.candidates if len(item.candidates) > 1
    )


# ---------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``songqueue weights [--models DIR] [--check] [--base-only]``: 0 when ready, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="songqueue weights",
        description="Download the DiffRhythm weights into the models directory, or check it.",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=Path(os.environ.get("SONGQUEUE_MODELS", DEFAULT_MODELS_DIR)),
        help="models directory (default: $SONGQUEUE_MODELS or ./models-data)",
    )
    parser.add_argument("--check", action="store_true", help="only verify, offline")
    parser.add_argument("--base-only", action="store_true", help="skip the 285 s full model")
    parser.add_argument("--endpoint", default=None, help="hub endpoint (default: HF_ENDPOINT)")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.check:
        try:
            download(args.models, full=not args.base_only, endpoint=args.endpoint)
        except DownloadError as exc:
            print(f"download failed: {exc}")
            return 1
    missing = check(args.models)
    if missing:
        print(f"DiffRhythm weights in {args.models} are incomplete:")
        for line in missing:
            print(f"  - {line}")
        return 1
    print(f"DiffRhythm weights in {args.models} are complete.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
