"""Starting real songqueue processes for acceptance tests (loopback only, bounded waits)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

START_TIMEOUT = 30.0  # seconds for a process to answer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SONGQUEUE_", "ACESTEP_"))}
    env["SONGQUEUE_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def songqueue(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m service ARGS`` with output to ``log``."""
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "service", *args],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_http(base_url: str, timeout: float = START_TIMEOUT) -> None:
    def up() -> bool:
        try:
            return httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout, f"{base_url}/health")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout)


@contextmanager
def api_process(home: Path, log: Path, **env: str) -> Iterator[str]:
    """``songqueue serve`` on a free port; yields its base URL."""
    port = free_port()
    proc = songqueue(["serve", "--port", str(port)], process_env(home, **env), log)
    try:
        wait_http(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, signal.SIGKILL)


def finished_job(base_url: str, job_id: str, timeout: float) -> dict:
    """Poll ``GET /v1/jobs/{id}`` until the job succeeded or failed; its last state."""
    job: dict = {}

    def finished() -> bool:
        nonlocal job
        job = httpx.get(f"{base_url}/v1/jobs/{job_id}").json()
        return job["status"] in ("succeeded", "failed")

    wait_until(finished, timeout, f"job {job_id} to finish")
    return job
