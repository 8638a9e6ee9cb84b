"""HTTP/1.1 keep-alive load from a separate process: raw asyncio protocol, uvloop when present.

Far cheaper per request than httpx, so on 2 cores the client leaves the server most of the CPU.
The plan is a JSON-lines file of ``[method, path, body_or_null]`` that the clients cycle through.
Runs for ``--seconds`` after ``--warmup`` seconds (not counted), or for ``--requests`` in all.

    python bench/loadgen.py --port 8001 --plan plan.jsonl [--clients 16] [--seconds 8]

Prints one JSON line: requests, requests/s, p50/p99/max ms, status counts, client CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONNECT_TIMEOUT = 5.0  # seconds
REQUEST_TIMEOUT = 30.0  # seconds before a request counts as failed


def encode(method: str, path: str, body: object, host: str) -> bytes:
    """One request's bytes, built once up front so the loop only writes them."""
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return head.encode() + b"\r\n" + payload


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``request`` writes bytes and awaits the status code."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).split(b"\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        if not self.waiter.done():
            self.waiter.set_result(int(head[0].split()[1]))

    async def request(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await asyncio.wait_for(self.waiter, REQUEST_TIMEOUT)


async def run(args: argparse.Namespace, plan: list[bytes]) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    failures = 0
    remaining = args.requests
    cycle = itertools.cycle(plan)

    async def connect() -> Connection:
        _, conn = await asyncio.wait_for(
            loop.create_connection(Connection, "127.0.0.1", args.port), CONNECT_TIMEOUT
        )
        return conn

    async def client(stop_at: float, measure: bool) -> None:
        nonlocal failures, remaining
        conn = await connect()
        while time.perf_counter() < stop_at:
            if args.requests:
                if remaining <= 0:
                    break
                remaining -= 1
            raw = next(cycle)
            t0 = time.perf_counter()
            try:
                status = await conn.request(raw)
            except (TimeoutError, ConnectionError):
                failures += 1
                if conn.transport is not None:
                    conn.transport.close()
                conn = await connect()
                continue
            if measure:
                latencies.append(time.perf_counter() - t0)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
        if conn.transport is not None:
            conn.transport.close()

    if args.warmup > 0:
        stop_at = time.perf_counter() + args.warmup
        await asyncio.gather(*(client(stop_at, False) for _ in range(args.clients)))
    cpu0 = time.process_time()
    started = time.perf_counter()
    horizon = args.seconds  # with --requests: a cap on the run's length
    stop_at = started + horizon
    await asyncio.gather(*(client(stop_at, True) for _ in range(args.clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else -1.0

    return {
        "loadgen": "asyncio-raw" + ("+uvloop" if args.uvloop else ""),
        "clients": args.clients,
        "seconds": round(elapsed, 3),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(pct(1.0), 2),
        "statuses": statuses,
        "non_2xx": sum(n for s, n in statuses.items() if not s.startswith("2")),
        "failures": failures,
        "client_cpu_s": round(time.process_time() - cpu0, 3),
    }


def read_plan(path: Path, port: int) -> list[bytes]:
    host = f"127.0.0.1:{port}"
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [encode(m, p, b, host) for m, p, b in lines]


WRK_SCRIPT = """
local reqs = {%s}
local i = 0
request = function()
  i = i + 1
  return reqs[(i %% #reqs) + 1]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"non_2xx":%%d,"failures":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_script(plan: Path) -> str:
    """A Lua script that cycles through the plan's requests (wrk.format builds each once)."""
    items = []
    for method, path, body in (json.loads(x) for x in plan.read_text().splitlines() if x):
        if body is None:
            items.append(f"wrk.format({method!r}, [==[{path}]==])")
        else:
            items.append(
                f"wrk.format({method!r}, [==[{path}]==], "
                f"{{['Content-Type']='application/json'}}, [==[{json.dumps(body)}]==])"
            )
    return WRK_SCRIPT % ",\n".join(items)


def run_wrk(args: argparse.Namespace) -> dict:
    """The same figures from ``wrk`` (C, one thread): less client CPU than any Python loop."""
    exe = shutil.which("wrk")
    assert exe is not None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(wrk_script(args.plan))
    url = f"http://127.0.0.1:{args.port}"
    base = [exe, "-t1", f"-c{args.clients}", "--timeout", f"{int(REQUEST_TIMEOUT)}s", "-s", f.name]
    try:
        if args.warmup > 0:
            subprocess.run([*base, f"-d{max(1, round(args.warmup))}s", url],
                           capture_output=True, check=True, timeout=args.warmup + 60)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([*base, f"-d{max(1, round(args.seconds))}s", url],
                              capture_output=True, text=True, check=True,
                              timeout=args.seconds + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(f.name)
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    raw = json.loads(line)
    seconds = raw["duration_us"] / 1e6
    return {
        "loadgen": "wrk",
        "clients": args.clients,
        "seconds": round(seconds, 3),
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "non_2xx": raw["non_2xx"],
        "failures": raw["failures"],
        "client_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime
                              - before.ru_stime, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--plan", type=Path, required=True, help="JSON lines [method, path, body]")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--requests", type=int, default=0,
                        help="stop after N (0: by time; --seconds still caps the run)")
    parser.add_argument("--tool", choices=["auto", "wrk", "asyncio"], default="auto",
                        help="auto: wrk when on PATH and the run is by time")
    args = parser.parse_args(argv)
    if args.tool == "wrk" or (args.tool == "auto" and shutil.which("wrk") and not args.requests):
        sys.stdout.write(json.dumps(run_wrk(args)) + "\n")
        return 0
    plan = read_plan(args.plan, args.port)
    try:
        import uvloop

        args.uvloop = True
        runner = uvloop.run
    except ImportError:
        args.uvloop = False
        runner = asyncio.run
    result = runner(run(args, plan))
    result["pid"] = os.getpid()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
