"""Choosing and loading an engine by name, lazily, so that importing this module is cheap."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from models.engine import Engine

ENGINE_NAMES: tuple[str, ...] = ("synth", "diffrhythm")

log = logging.getLogger(__name__)


def diffrhythm_missing(models_dir: Path) -> list[str]:
    """What the DiffRhythm engine lacks in ``models_dir`` (empty when it can run)."""
    try:
        from models.diffrhythm.weights import check
    except ImportError as exc:  # torch or the package itself not installed
        return [f"the DiffRhythm engine cannot be imported: {exc}"]
    return check(models_dir)


def resolve_engine_name(choice: str, models_dir: Path) -> str:
    """``auto`` means DiffRhythm when its weights are complete, otherwise synth.

    ``module:Class`` names a custom engine class (used by tests: ``models.testing:TimedEngine``).
    """
    if ":" in choice:
        return choice
    if choice not in ("auto", *ENGINE_NAMES):
        raise ValueError(f"unknown engine {choice!r}; choose auto, synth or diffrhythm")
    if choice != "auto":
        return choice
    missing = diffrhythm_missing(models_dir)
    if missing:
        log.info("using the synth engine: DiffRhythm weights incomplete (%s)", "; ".join(missing))
        return "synth"
    return "diffrhythm"


def load_engine(name: str, models_dir: Path) -> Engine:
    """Build the named engine; DiffRhythm loads its weights here, once per worker."""
    if name == "synth":
        from models.synth import SynthEngine

        return SynthEngine()
    if name == "diffrhythm":
        from models.diffrhythm.pipeline import DiffRhythmEngine

        return DiffRhythmEngine.from_directory(models_dir)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        engine_class = getattr(importlib.import_module(module_name), attr)
        return engine_class()
    raise ValueError(f"unknown engine {name!r}")
