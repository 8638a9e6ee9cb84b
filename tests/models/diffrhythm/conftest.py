"""Fixtures for the DiffRhythm tests: a tiny random-weight model directory and a fake hub."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models.diffrhythm.tiny import write_tiny_model_dir

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete tiny model directory (shared; tests must not modify it)."""
    return write_tiny_model_dir(tmp_path_factory.mktemp("tiny-models"), seed=0)


@pytest.fixture(scope="session")
def engine(tiny_dir: Path):
    from models.diffrhythm.pipeline import DiffRhythmEngine

    return DiffRhythmEngine.from_directory(tiny_dir, device="cpu")


class FakeHub:
    """Serves ``{root}/{repo_type}s/{repo_id}/{filename}`` the way huggingface.co does.

    ``/{repo_id}/resolve/{rev}/{file}`` for models, ``/spaces/{repo_id}/resolve/...`` for spaces;
    HEAD answers carry the commit, ETag and size headers ``hf_hub_download`` reads.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _resolve(self) -> Path | None:
                path = self.path.split("?", 1)[0]
                kind = "models"
                if path.startswith("/spaces/"):
                    kind, path = "spaces", path[len("/spaces") :]
                parts = path.lstrip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return None
                repo_id, filename = "/".join(parts[:2]), "/".join(parts[4:])
                file = hub.root / kind / repo_id / filename
                return file if file.is_file() else None

            def _headers(self, file: Path) -> None:
                data = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", FAKE_COMMIT)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def _missing(self) -> None:
                body = b'{"error": "Entry not found"}'
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Repo-Commit", FAKE_COMMIT)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                hub.requests.append(f"HEAD {self.path}")
                file = self._resolve()
                if file is None:
                    return self._missing()
                self._headers(file)

            def do_GET(self) -> None:
                hub.requests.append(f"GET {self.path}")
                file = self._resolve()
                if file is None:
                    return self._missing()
                self._headers(file)
                self.wfile.write(file.read_bytes())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, repo_id: str, filename: str, source: Path | bytes, kind: str = "models") -> None:
        dest = self.root / kind / repo_id / filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source if isinstance(source, bytes) else source.read_bytes())


@pytest.fixture
def fake_hub(tmp_path: Path) -> Iterator[FakeHub]:
    hub = FakeHub(tmp_path / "hub")
    hub.thread.start()
    try:
        yield hub
    finally:
        hub.server.shutdown()
        hub.server.server_close()
