"""One typed settings object, read from the environment and an optional ``.env`` file.

The environment beats the file; every value arrives as text and is converted by msgspec with
``strict=False``; an invalid value fails at start-up with the variable's name in the message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

DEFAULT_PORT = 8001  # ACE-Step clients assume 8001

# Environment variables, in order of precedence, for each setting. ACE-Step's and the
# DiffRhythm API's own names are honoured so that existing deployments keep working.
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "home": ("SONGQUEUE_HOME",),
    "database_url": ("SONGQUEUE_DATABASE_URL",),
    "host": ("SONGQUEUE_HOST", "ACESTEP_API_HOST", "API_HOST"),
    "port": ("SONGQUEUE_PORT", "ACESTEP_API_PORT", "API_PORT"),
    "workers": ("SONGQUEUE_WORKERS",),
    "engine": ("SONGQUEUE_ENGINE",),
    "models_dir": ("SONGQUEUE_MODELS",),
    "api_key": ("SONGQUEUE_API_KEY", "ACESTEP_API_KEY"),
    "cors_origins": ("CORS_ORIGINS", "SONGQUEUE_CORS_ORIGINS"),
    "queue_maxsize": ("SONGQUEUE_QUEUE_MAXSIZE", "ACESTEP_QUEUE_MAXSIZE"),
    "lease_seconds": ("SONGQUEUE_LEASE_SECONDS",),
    "max_attempts": ("SONGQUEUE_MAX_ATTEMPTS",),
    "retry_backoff_seconds": ("SONGQUEUE_RETRY_BACKOFF_SECONDS",),
    "busy_timeout_ms": ("SONGQUEUE_BUSY_TIMEOUT_MS",),
    "sqlite_synchronous": ("SONGQUEUE_SQLITE_SYNCHRONOUS",),
    "retention_hours": ("SONGQUEUE_RETENTION_HOURS",),
    "max_body_bytes": ("SONGQUEUE_MAX_BODY_BYTES",),
    "max_upload_bytes": ("SONGQUEUE_MAX_UPLOAD_BYTES",),
    "default_audio_format": ("SONGQUEUE_AUDIO_FORMAT",),
    "extra_audio_roots": ("SONGQUEUE_AUDIO_ROOTS",),
    "s3_bucket": ("SONGQUEUE_S3_BUCKET",),
    "s3_endpoint_url": ("SONGQUEUE_S3_ENDPOINT_URL",),
    "s3_region": ("SONGQUEUE_S3_REGION", "AWS_DEFAULT_REGION"),
    "s3_prefix": ("SONGQUEUE_S3_PREFIX",),
    "log_level": ("SONGQUEUE_LOG_LEVEL",),
    "log_json": ("SONGQUEUE_LOG_JSON",),
    "debug": ("DEBUG", "SONGQUEUE_DEBUG"),
}

Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Everything a process of songqueue can be told. Units are in the names or comments."""

    home: str = "~/.songqueue"  # data directory: database, uploads, outputs
    database_url: str = ""  # "" = sqlite+aiosqlite:///<home>/songqueue.db
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = DEFAULT_PORT
    workers: Annotated[int, msgspec.Meta(ge=0)] = 1  # worker processes started by `up`
    engine: str = "auto"  # auto | synth | diffrhythm | module:Class
    models_dir: str = ""  # "" = <home>/models
    api_key: str | None = None  # set (even to "") = every route but /health needs it
    cors_origins: str = ""  # comma-separated; "" = localhost and file:// pages only
    queue_maxsize: Positive = 200  # queued jobs before submissions get 429
    lease_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    max_attempts: Positive = 3
    retry_backoff_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0  # doubled per attempt
    busy_timeout_ms: Annotated[int, msgspec.Meta(ge=0)] = 5000
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    retention_hours: Annotated[float, msgspec.Meta(ge=0)] = 24.0  # 0 = keep forever
    max_body_bytes: Positive = 1 << 20  # JSON and urlencoded bodies
    max_upload_bytes: Positive = 100 << 20  # one uploaded audio file
    default_audio_format: Literal["mp3", "wav", "flac", "ogg"] = "mp3"
    extra_audio_roots: str = ""  # os.pathsep-separated directories clients may name as sources
    s3_bucket: str = ""  # set = results and sources also go to this S3-compatible bucket
    s3_endpoint_url: str = ""  # "" = AWS; e.g. http://minio:9000
    s3_region: str = "us-east-1"
    s3_prefix: str = ""  # key prefix inside the bucket, e.g. "songqueue/"
    log_level: str = "INFO"
    log_json: bool = False
    debug: bool = False

    def __post_init__(self) -> None:
        self.home = str(Path(self.home).expanduser().absolute())
        if self.engine not in ("auto", "synth", "diffrhythm") and ":" not in self.engine:
            raise ValueError(
                f"engine must be auto, synth, diffrhythm or module:Class, got {self.engine!r}"
            )

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home_path / 'songqueue.db'}"

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def models_path(self) -> Path:
        return (
            Path(self.models_dir).expanduser().absolute()
            if self.models_dir
            else self.home_path / "models"
        )

    @property
    def outputs_dir(self) -> Path:
        return self.home_path / "outputs"

    @property
    def uploads_dir(self) -> Path:
        return self.home_path / "uploads"

    @property
    def auth_enabled(self) -> bool:
        return self.api_key is not None


class SettingsError(ValueError):
    """A setting has an invalid value."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines (``#`` comments, optional quotes); a missing file is empty."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
    **overrides: object,
) -> Settings:
    """Build settings: explicit overrides beat the environment, which beats the ``.env`` file."""
    environ = os.environ if environ is None else environ
    sources = [dict(environ)]
    if env_file is not None:
        sources.append(read_env_file(env_file))
    raw: dict[str, object] = {}
    for field, names in ENV_NAMES.items():
        for source in sources:
            found = next((source[n] for n in names if n in source), None)
            if found is not None:
                raw[field] = found
                break
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        found = re.search(r"\$\.(\w+)", str(exc))
        field = found.group(1) if found else ""
        if not field:
            raise SettingsError(f"invalid settings: {exc}") from exc
        names = ", ".join(ENV_NAMES.get(field, (field,)))
        raise SettingsError(f"invalid setting {names}={raw.get(field)!r}: {exc}") from exc
