"""The bench runner runs end to end in its tiny configuration and writes valid JSON.

No timing is asserted: the figures depend on the machine and its other tenants.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only",
         "limits,submit,pickup", "--output", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["quick"] is True
    assert set(record["scenarios"]) == {"limits", "submit", "pickup"}
    for name, result in record["scenarios"].items():
        assert "skipped" not in result, (name, result.get("skipped"))
    assert record["scenarios"]["submit"]["songqueue"]["requests"] > 0
    assert record["scenarios"]["submit"]["songqueue"]["non_2xx"] == 0
    figures = [row["figure"] for row in record["table"]]
    assert any(f.startswith("submissions/s") for f in figures)
    assert "submissions/s" in done.stdout
