"""The ``songqueue`` command: up, serve, worker, migrate, weights; generate, status, cancel."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from service import client
from service.config import Settings, SettingsError, load_settings
from service.logs import setup_logging

log = logging.getLogger("songqueue")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", help="data directory (database, uploads, outputs); env SONGQUEUE_HOME"
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL; env SONGQUEUE_DATABASE_URL")
    parser.add_argument("--models", help="models directory; env SONGQUEUE_MODELS")


def _http(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8001)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="songqueue", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="migrate, then run the API and worker processes")
    _common(up)
    _http(up)
    up.add_argument("--workers", type=int, help="worker processes (default 1)")
    up.add_argument("--engine", help="auto (default), synth, diffrhythm, or module:Class")
    serve = sub.add_parser("serve", help="run the API only (jobs wait for workers)")
    _common(serve)
    _http(serve)
    worker = sub.add_parser("worker", help="run one worker process")
    _common(worker)
    worker.add_argument("--engine", help="auto (default), synth, diffrhythm, or module:Class")
    worker.add_argument("--until-empty", action="store_true", help="exit when the queue is empty")
    migrate = sub.add_parser("migrate", help="apply database migrations")
    _common(migrate)
    weights = sub.add_parser("weights", help="download or check DiffRhythm weights")
    _common(weights)
    weights.add_argument("--check", action="store_true", help="verify offline, download nothing")
    weights.add_argument("--base-only", action="store_true", help="skip the 285 s full model")
    weights.add_argument("--endpoint", help="hub endpoint (default: HF_ENDPOINT or the public hub)")
    client.add_parsers(sub)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        home=args.home,
        database_url=args.database_url,
        models_dir=getattr(args, "models", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
        engine=getattr(args, "engine", None),
    )


def _forwarded(args: argparse.Namespace, names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        value = getattr(args, name.replace("-", "_"), None)
        if value is not None:
            out += [f"--{name}", str(value)]
    return out


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from models.registry import resolve_engine_name
    from service.store.migrate import upgrade
    from service.supervisor import run_up

    upgrade(settings.database)
    engine = resolve_engine_name(settings.engine, settings.models_path)
    log.info(
        "songqueue up: API http://%s:%d, %d worker(s), engine %s, home %s",
        settings.host,
        settings.port,
        settings.workers,
        engine,
        settings.home,
    )
    common = ["--home", settings.home, *_forwarded(args, ["database-url", "models"])]
    api_args = [*common, "--host", settings.host, "--port", str(settings.port)]
    worker_args = [*common, *_forwarded(args, ["engine"])]
    return run_up(api_args, worker_args, settings.workers)


def cmd_serve(settings: Settings) -> int:
    import uvicorn

    from service.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="auto",
        http="auto",
        log_level=settings.log_level.lower(),
        access_log=settings.debug,
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from models.registry import load_engine, resolve_engine_name
    from service.store.db import open_database
    from service.worker import Worker

    name = resolve_engine_name(settings.engine, settings.models_path)
    engine = load_engine(name, settings.models_path)

    async def main() -> None:
        db = open_database(
            settings.database,
            busy_timeout_ms=settings.busy_timeout_ms,
            synchronous=settings.sqlite_synchronous,
        )
        worker = Worker(settings, db, engine, run_until_empty=args.until_empty)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        try:
            await worker.run()
        finally:
            await db.dispose()

    asyncio.run(main())
    return 0


def cmd_migrate(settings: Settings) -> int:
    from service.store.migrate import upgrade

    upgrade(settings.database)
    log.info("database at head: %s", settings.database)
    return 0


def cmd_weights(args: argparse.Namespace, settings: Settings) -> int:
    from models.diffrhythm.weights import main as weights_main

    argv = ["--models", str(settings.models_path)]
    if args.check:
        argv.append("--check")
    if args.base_only:
        argv.append("--base-only")
    if args.endpoint:
        argv += ["--endpoint", args.endpoint]
    return weights_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in client.COMMANDS:  # talks to a server over HTTP: no local settings
        return client.main(args)
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"songqueue: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, json_lines=settings.log_json, role=args.command)
    match args.command:
        case "up":
            return cmd_up(args, settings)
        case "serve":
            return cmd_serve(settings)
        case "worker":
            return cmd_worker(args, settings)
        case "migrate":
            return cmd_migrate(settings)
        case "weights":
            return cmd_weights(args, settings)
    return 2
