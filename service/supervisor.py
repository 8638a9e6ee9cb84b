"""``songqueue up``: one API process and N worker processes, started and stopped together.

Children are separate interpreters (``python -m service serve|worker``) so that a crashing
engine never takes the API down. SIGINT/SIGTERM are forwarded as SIGTERM: workers stop at the
next step and return their jobs to the queue; after a grace period the rest is killed. A worker
that dies on its own is restarted; if the API dies, everything stops.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 30.0
RESTART_DELAY_SECONDS = 1.0
POLL_SECONDS = 0.2


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.argv, env=env)
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.process.pid)


def run_up(api_args: list[str], worker_args: list[str], workers: int) -> int:
    """Run the API and workers until a signal arrives or the API exits; returns an exit code."""
    python = [sys.executable, "-m", "service"]
    api = Child("api", [*python, "serve", *api_args])
    pool = [Child(f"worker-{i + 1}", [*python, "worker", *worker_args]) for i in range(workers)]
    env = dict(os.environ)
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            log.info("received %s: stopping", signal.Signals(signum).name)
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for child in (api, *pool):
        child.start(env)
    exit_code = 0
    while not stopping:
        time.sleep(POLL_SECONDS)
        assert api.process is not None
        if api.process.poll() is not None:
            exit_code = api.process.returncode or 1
            log.error("the API exited with code %s: stopping the workers", api.process.returncode)
            break
        for child in pool:
            assert child.process is not None
            if child.process.poll() is not None and not stopping:
                log.error(
                    "%s exited with code %s: restarting", child.name, child.process.returncode
                )
                time.sleep(RESTART_DELAY_SECONDS)
                child.restarts += 1
                child.start(env)
    _stop_all([api, *pool])
    return exit_code


def _stop_all(children: list[Child]) -> None:
    alive = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in alive:
        child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    for child in alive:
        try:
            child.process.wait(max(deadline - time.monotonic(), 0.1))  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s: killing it", child.name, SHUTDOWN_GRACE_SECONDS)
            child.process.kill()  # type: ignore[union-attr]
            child.process.wait()  # type: ignore[union-attr]
    log.info("all processes stopped")
