"""Where files live, and which paths a client may name.

Outputs: ``<home>/outputs/<job_id>/<n>.<fmt>``; ``/v1/audio`` serves nothing else (symlinks are
resolved first, so a link pointing outside is refused). Sources named by clients are read only
inside the allowed roots: outputs (so a result can be fed back as ``src_audio_path``), uploads,
the system temp directory (ACE-Step clients copy sources there) and configured extra roots.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

from starlette.datastructures import UploadFile

from service.config import Settings
from service.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge

UPLOAD_CHUNK_BYTES = 1 << 20
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aiff", ".aif"})


def ensure_dirs(settings: Settings) -> None:
    for directory in (settings.home_path, settings.outputs_dir, settings.uploads_dir):
        directory.mkdir(parents=True, exist_ok=True)


def job_output_dir(settings: Settings, job_id: str) -> Path:
    return settings.outputs_dir / job_id


def audio_url(path: Path) -> str:
    """ACE-Step's relative download URL: ``/v1/audio?path=`` + the quoted absolute path."""
    return "/v1/audio?path=" + quote(str(path), safe="")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def resolve_output(settings: Settings, raw_path: str) -> Path:
    """The real file behind a ``/v1/audio?path=`` value, if it lies inside the outputs."""
    if not raw_path or "\x00" in raw_path:
        raise BadRequest("path is required")
    real = Path(os.path.realpath(raw_path))
    if not _inside(real, Path(os.path.realpath(settings.outputs_dir))):
        raise Forbidden("Access denied: path outside allowed directory")
    if not real.is_file():
        raise NotFound("Audio file not found")
    return real


def allowed_source_roots(settings: Settings) -> list[Path]:
    roots = [settings.outputs_dir, settings.uploads_dir, Path(tempfile.gettempdir())]
    roots += [Path(p) for p in settings.extra_audio_roots.split(os.pathsep) if p]
    return [Path(os.path.realpath(r)) for r in roots]


def validate_source_path(settings: Settings, raw_path: str) -> str:
    """A client-named source file, as a real absolute path inside an allowed root."""
    if "\x00" in raw_path:
        raise BadRequest("audio file path contains a NUL byte")
    if ".." in Path(raw_path).parts:
        raise BadRequest("path traversal in audio file paths is not allowed")
    real = Path(os.path.realpath(raw_path))
    if not any(_inside(real, root) for root in allowed_source_roots(settings)):
        raise BadRequest(
            "audio file path outside the allowed directories "
            "(outputs, uploads, the system temp directory)"
        )
    if not real.is_file():
        raise BadRequest(f"audio file not found: {raw_path}")
    return str(real)


async def save_upload(settings: Settings, upload: UploadFile, prefix: str) -> Path:
    """Stream an upload into the uploads directory, refusing it past ``max_upload_bytes``."""
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        suffix = ".bin"
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    dest = settings.uploads_dir / f"{prefix}_{uuid.uuid4().hex}{suffix}"
    partial = dest.with_suffix(dest.suffix + ".part")
    written = 0
    try:
        with partial.open("wb") as out:
            while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
                written += len(chunk)
                if written > settings.max_upload_bytes:
                    raise PayloadTooLarge(
                        f"upload {upload.filename!r} is larger than "
                        f"{settings.max_upload_bytes} bytes"
                    )
                out.write(chunk)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest


def remove_paths(paths: list[Path]) -> None:
    """Delete files and directories, ignoring what is already gone."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
