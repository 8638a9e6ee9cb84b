"""The seed's configuration: ``API_HOST``, ``API_PORT``, ``DEBUG`` and ``CORS_ORIGINS`` from the
environment or a ``.env`` file, honoured by ``songqueue serve``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.config import SettingsError, load_settings
from tests.processes import free_port, process_env, stop, wait_until

START_TIMEOUT = 30.0  # seconds for a fresh process to answer
SEED_ENV = {"API_HOST": "0.0.0.0", "API_PORT": "8000", "DEBUG": "False", "CORS_ORIGINS": "*"}


def test_environment_names(tmp_path: Path) -> None:
    settings = load_settings(environ={**SEED_ENV, "SONGQUEUE_HOME": str(tmp_path)}, env_file=None)
    assert (settings.host, settings.port, settings.debug) == ("0.0.0.0", 8000, False)
    assert settings.cors_origins == "*"
    debug = load_settings(environ={"DEBUG": "True", "SONGQUEUE_HOME": str(tmp_path)}, env_file=None)
    assert debug.debug is True
    assert create_app(debug).debug is True
    assert create_app(settings).debug is False


def test_env_file_and_precedence(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SEED_ENV.items()), encoding="utf-8")
    from_file = load_settings(environ={"SONGQUEUE_HOME": str(tmp_path)}, env_file=env_file)
    assert (from_file.host, from_file.port, from_file.cors_origins) == ("0.0.0.0", 8000, "*")
    env_wins = load_settings(
        environ={"SONGQUEUE_HOME": str(tmp_path), "API_PORT": "8123"}, env_file=env_file
    )
    assert env_wins.port == 8123


def test_bad_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="API_PORT"):
        load_settings(
            environ={"API_PORT": "eighty", "SONGQUEUE_HOME": str(tmp_path)}, env_file=None
        )


def test_serve_honours_env_file(tmp_path: Path) -> None:
    """``songqueue serve`` started in a folder with the seed's ``.env``: its port, host and
    CORS origins are the file's."""
    port = free_port()
    (tmp_path / ".env").write_text(
        f"API_HOST=127.0.0.1\nAPI_PORT={port}\nDEBUG=False\nCORS_ORIGINS=*\n", encoding="utf-8"
    )
    env = process_env(tmp_path / "home")
    for name in SEED_ENV:
        env.pop(name, None)
    log = (tmp_path / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/api/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, START_TIMEOUT, f"songqueue serve on API_PORT={port}")
        res = httpx.get(f"{base}/api/health", headers={"Origin": "https://studio.example"})
        assert res.json()["status"] == "healthy"
        assert res.headers["access-control-allow-origin"] == "*"
    finally:
        stop(proc)
        log.close()
