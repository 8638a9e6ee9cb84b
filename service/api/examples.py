"""The built-in examples behind ``/create_random_sample`` and ``/v1/music/random``.

ACE-Step ships hundreds of preset files and an LLM; songqueue ships a dozen presets in
``random_examples.json``, in upstream's two shapes (spec §9.1): ``simple_mode`` items are
``{description, instrumental, vocal_language}``, ``text2music`` items are full presets.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

EXAMPLES_FILE = Path(__file__).with_name("random_examples.json")


@cache
def examples() -> dict[str, list[dict[str, Any]]]:
    return json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))


def random_example(kind: str) -> dict[str, Any] | None:
    """A copy of one random example of ``kind``, or None when there are none."""
    pool = examples().get(kind, [])
    return dict(random.choice(pool)) if pool else None
