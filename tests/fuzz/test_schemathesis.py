"""Property-based fuzzing of every operation in ``/openapi.json``: zero 5xx responses.

Schemathesis generates requests from the published schema (valid and invalid ones) and sends
them to the ASGI app in process; the only check is "not a server error", so every refusal must
be a clean 4xx. Bounded: a fixed number of examples per operation, no deadline. Operations are
driven through Hypothesis directly (schemathesis' pytest plugin does not support pytest 9 yet).
"""

from __future__ import annotations

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from service.app import create_app  # noqa: E402
from service.config import load_settings  # noqa: E402
from service.store.migrate import upgrade  # noqa: E402

EXAMPLES_PER_OPERATION = 25
# Blocks until a worker finishes the job (none runs here); its refusals are tested in tests/api.
WAITS_FOR_A_WORKER = "/v1/chat/completions"


def test_no_operation_answers_with_a_server_error(tmp_path: Path) -> None:
    config = load_settings(
        environ={},
        env_file=None,
        home=str(tmp_path / "home"),
        engine="synth",
        queue_maxsize=50,
        retention_hours=0,
    )
    upgrade(config.database)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(config))
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path != WAITS_FOR_A_WORKER]
    assert len(operations) >= 20  # both APIs are in the document
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: object) -> None:
            response = case.call()  # type: ignore[attr-defined]
            case.validate_response(response, checks=(not_a_server_error,))  # type: ignore[attr-defined]

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert failures == []
