"""``songqueue generate | status | cancel``: a command-line client for a running songqueue.

It speaks the same HTTP API as any other client (era A ``/v1/music/generate``,
``/v1/jobs/{id}``, ``/v1/jobs/{id}/cancel``, ``/v1/audio``), so it works against a server on
another machine. httpx and rich are imported when a command runs, not when the parser is built,
so ``songqueue serve`` and ``worker`` do not pay for them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import httpx
    from rich.console import Console
    from rich.table import Table

COMMANDS = ("generate", "status", "cancel")
DEFAULT_SERVER = "http://127.0.0.1:8001"
POLL_SECONDS = 0.5  # between status polls while a job is active
HTTP_TIMEOUT_SECONDS = 60.0  # per request; audio downloads of long songs included
FINISHED = ("succeeded", "failed")
EXIT_OK, EXIT_JOB_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


class ClientError(Exception):
    """The server refused a request or could not be reached."""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the client's subcommands to ``songqueue``'s parser."""
    gen = sub.add_parser("generate", help="submit a song, show its progress, download it")
    _connection(gen)
    gen.add_argument("--caption", "--prompt", default="", help="style description")
    gen.add_argument("--lyrics", metavar="FILE", help="lyrics file ('-' reads stdin)")
    gen.add_argument("--duration", type=float, metavar="S", help="seconds of audio")
    gen.add_argument("--bpm", type=int)
    gen.add_argument("--key", dest="key_scale", metavar="KEY", help='e.g. "C major"')
    gen.add_argument("--seed", type=int, help="fixed seed (default random)")
    gen.add_argument("--batch-size", type=int, default=1, help="songs to make (default 1)")
    gen.add_argument("--format", dest="audio_format", choices=["mp3", "wav", "flac", "ogg"])
    gen.add_argument(
        "--task", dest="task_type", default="text2music", choices=["text2music", "cover", "repaint"]
    )
    gen.add_argument("--src", metavar="FILE", help="source song to upload (cover, repaint)")
    gen.add_argument("--reference", metavar="FILE", help="reference song to upload")
    gen.add_argument("--repaint-start", type=float, metavar="S")
    gen.add_argument("--repaint-end", type=float, metavar="S")
    gen.add_argument("-o", "--output", default=".", metavar="DIR", help="where to save results")
    gen.add_argument("--no-wait", action="store_true", help="print the job id and exit")
    status = sub.add_parser("status", help="a job's state, or the server's when no id is given")
    _connection(status)
    status.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    cancel = sub.add_parser("cancel", help="cancel a queued or running job")
    _connection(cancel)
    cancel.add_argument("job_ids", nargs="+", metavar="JOB_ID")


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get("SONGQUEUE_SERVER", DEFAULT_SERVER),
        help=f"songqueue URL (env SONGQUEUE_SERVER, default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SONGQUEUE_API_KEY"),
        help="API key, sent as Authorization: Bearer (env SONGQUEUE_API_KEY)",
    )


def main(args: argparse.Namespace) -> int:
    """Run one client command; the exit status says how it went."""
    import httpx
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    client = httpx.Client(
        base_url=args.server.rstrip("/"), headers=headers, timeout=HTTP_TIMEOUT_SECONDS
    )
    try:
        with client:
            match args.command:
                case "generate":
                    return generate(client, args, console)
                case "status":
                    return status(client, args, console)
                case "cancel":
                    return cancel(client, args, console)
    except ClientError as exc:
        console.print(f"[red]songqueue: {exc}[/red]")
        return EXIT_ERROR
    except httpx.HTTPError as exc:
        console.print(f"[red]songqueue: cannot reach {args.server}: {exc}[/red]")
        return EXIT_ERROR
    except BrokenPipeError:  # `songqueue status --json | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as the Python docs
        return EXIT_OK
    return EXIT_ERROR


def _checked(res: httpx.Response) -> Any:
    """The JSON body of a 2xx answer; else the server's ``detail`` as a ``ClientError``."""
    try:
        body = res.json()
    except ValueError:
        body = None
    if res.is_success:
        return body
    detail = body.get("detail") if isinstance(body, dict) else None
    raise ClientError(f"{res.request.method} {res.request.url.path}: {res.status_code} {detail}")


def get_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    return _checked(client.get(f"/v1/jobs/{job_id}"))


# --- generate ---------------------------------------------------------------------------------


def request_fields(args: argparse.Namespace) -> dict[str, str]:
    """The form fields of ``/v1/music/generate`` from the command line (unset ones left out)."""
    lyrics = ""
    if args.lyrics == "-":
        lyrics = sys.stdin.read()
    elif args.lyrics:
        lyrics = Path(args.lyrics).read_text(encoding="utf-8")
    values: dict[str, Any] = {
        "caption": args.caption,
        "lyrics": lyrics,
        "audio_duration": args.duration,
        "bpm": args.bpm,
        "key_scale": args.key_scale,
        "batch_size": args.batch_size,
        "audio_format": args.audio_format,
        "task_type": args.task_type,
        "repainting_start": args.repaint_start,
        "repainting_end": args.repaint_end,
    }
    if args.seed is not None:
        values |= {"seed": args.seed, "use_random_seed": "false"}
    return {k: str(v) for k, v in values.items() if v is not None and v != ""}


def submit(client: httpx.Client, args: argparse.Namespace) -> dict[str, Any]:
    """POST the job: multipart when a file is uploaded, else urlencoded."""
    fields = request_fields(args)
    files = {}
    for name, path in (("src_audio", args.src), ("reference_audio", args.reference)):
        if path:
            files[name] = (Path(path).name, Path(path).read_bytes())
    if files:
        return _checked(client.post("/v1/music/generate", data=fields, files=files))
    return _checked(client.post("/v1/music/generate", data=fields))


def describe(job: dict[str, Any]) -> str:
    """One line for the progress bar: where the job stands and when it should be done."""
    eta = job.get("eta_seconds")
    if job["status"] == "queued":
        start = job.get("eta_start_seconds")
        text = f"queued, position {job.get('queue_position') or '?'}"
        if start is not None:
            text += f", starts in ~{start:.0f} s"
        return text
    if job["status"] == "running":
        text = str(job.get("stage") or "running")
        if job.get("steps_total"):
            text += f", step {job['steps_done']}/{job['steps_total']}"
        if eta is not None:
            text += f", ~{eta:.0f} s left"
        return text
    return "cancelled" if job.get("cancelled") else str(job["status"])


def generate(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    created = submit(client, args)
    job_id = created["job_id"]
    print(job_id, flush=True)  # stdout: the id alone, for scripts
    console.print(f"job {job_id} queued at position {created.get('queue_position')}")
    if args.no_wait:
        return EXIT_OK
    columns = (
        TextColumn("[bold]{task.fields[state]:<9}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    last: tuple[Any, ...] = ()  # the first poll always prints: it brings the first ETA
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("submitted", total=1.0, state="queued")
            while True:
                job = get_job(client, job_id)
                where = (job["status"], job.get("queue_position"))
                if where != last and job["status"] not in FINISHED:
                    last = where  # a line per move in the queue and per state: readable logs
                    progress.console.print(f"job {job_id} {describe(job)}")
                done = job["status"] == "succeeded"
                progress.update(
                    task,
                    # below 1 until done: rich stops the elapsed clock at a full bar
                    completed=1.0 if done else min(float(job.get("progress") or 0.0), 0.99),
                    description="" if job["status"] in FINISHED else describe(job),
                    state="cancelled" if job.get("cancelled") else job["status"],
                )
                if job["status"] in FINISHED:
                    break
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        console.print(f"interrupted: cancelling job {job_id}")
        _checked(client.post(f"/v1/jobs/{job_id}/cancel"))
        return EXIT_INTERRUPTED
    if job["status"] != "succeeded":
        first = (job.get("error") or "").strip().splitlines()
        console.print(f"[red]job {job_id} {describe(job)}: {first[-1] if first else ''}[/red]")
        return EXIT_JOB_FAILED
    took = (job.get("finished_at") or 0) - (job.get("started_at") or 0)
    console.print(f"job {job_id} succeeded in {took:.1f} s (seeds {job['result']['seed_value']})")
    for path in download(client, job, Path(args.output)):
        print(path, flush=True)
    return EXIT_OK


def download(client: httpx.Client, job: dict[str, Any], out_dir: Path) -> list[Path]:
    """Save every audio file of a finished job as ``<job id prefix>-<n>.<ext>`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for n, url in enumerate(job["result"]["audio_paths"], start=1):
        server_path = parse_qs(urlsplit(url).query).get("path", [url])[0]
        suffix = Path(server_path).suffix or ".mp3"
        dest = out_dir / f"{job['job_id'][:8]}-{n}{suffix}"
        partial = dest.with_suffix(dest.suffix + ".part")
        with client.stream("GET", url) as res:
            if not res.is_success:
                res.read()
                _checked(res)
            with partial.open("wb") as out:
                for chunk in res.iter_bytes():
                    out.write(chunk)
        partial.replace(dest)
        saved.append(dest)
    return saved


# --- status, cancel ---------------------------------------------------------------------------


def status(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    from rich.console import Console

    out = Console(highlight=False)  # tables go to stdout; messages to stderr

    if not args.job_ids:
        health = _checked(client.get("/health"))["data"]
        stats = _checked(client.get("/v1/stats"))["data"]
        if args.json:
            print(json.dumps({"health": health, "stats": stats}, indent=2))
            return EXIT_OK
        table = _table(f"server {args.server}")
        table.add_row("workers", "ready" if health.get("models_initialized") else "none running")
        table.add_row("model", str(health.get("loaded_model")))
        for name, count in stats["jobs"].items():
            table.add_row(f"jobs {name}", str(count))
        avg = stats.get("avg_job_seconds")
        table.add_row("mean job time", "-" if avg is None else f"{avg:.1f} s")
        out.print(table)
        return EXIT_OK
    failed = False
    for job_id in args.job_ids:
        job = get_job(client, job_id)
        failed |= job["status"] == "failed"
        if args.json:
            print(json.dumps(job, indent=2))
            continue
        table = _table(f"job {job_id}")
        table.add_row("status", describe(job))
        table.add_row("progress", f"{100 * float(job.get('progress') or 0):.0f}%")
        if job.get("eta_seconds") is not None:
            table.add_row("ready in", f"~{job['eta_seconds']:.0f} s")
        if job.get("result"):
            for url in job["result"]["audio_paths"]:
                table.add_row("audio", args.server.rstrip("/") + url)
        if job.get("error"):
            table.add_row("error", job["error"].strip().splitlines()[-1])
        out.print(table)
    return EXIT_JOB_FAILED if failed else EXIT_OK


def _table(title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    return table


def cancel(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    for job_id in args.job_ids:
        job = _checked(client.post(f"/v1/jobs/{job_id}/cancel"))
        if job.get("cancelled"):
            state = "cancelled"
        elif job["status"] == "running":
            state = "running: stops at its next step"
        else:
            state = f"already {job['status']}"
        print(f"{job_id} {state}", flush=True)
    return EXIT_OK
