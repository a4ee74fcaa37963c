"""API load benchmark: N concurrent clients on one line's KPIs, with and without the result cache.

    .venv/bin/python -m bench.api [--clients 50] [--seconds 10] [--days 3] [--machines 10]
                                  [--analog-days 1] [--database-url URL [--reuse]] [--keep]

Loads a database with bench/kpi.py's generator (a smaller load: `--machines` machines in two
lines, `--days` days of states and 1 Hz counters, 3 analog tags at 1 Hz for `--analog-days`),
refreshes the rollups, then starts the real API (`api.server.serve`, uvicorn, as `shopfloor
serve` runs it) in a subprocess on a free loopback port and drives `--clients` concurrent clients
(closed loop: each sends its next request when the last answer arrived, on a keep-alive
connection of its own) from this process, on its own event loop, for `--seconds` per case. Printed per case: requests/s, p50/p95/p99 latency,
errors, the server's CPU time per request and the load average. Side by side in one run:

- `ceiling`: a bench-only route that returns `{}` through the same app and uvicorn: the HTTP
  ceiling of one server process (and of this client);
- `cache on`: the product's defaults (settings.api.cache_s 1 s; past windows kept until late
  data);
- `cache off`: `cache_s` 0 and past windows not kept (the cache's bench-only switch): the engine
  for every request, as before issue 11;

each over line1's KPIs for the default window (the current shift so far: a live answer) and a
past window (the early shift of the day before: kept until late data), and over a dashboard's
mix (lines, each line's KPIs, series and downtime, every machine's timeline, a tag's trend; the
clients spread over it). Last, one client alone without the cache, for the single-request
latency. The API's clock runs at
the data's time: it starts an hour before the end of the loaded data and moves with real time.
Without --database-url (or SHOPFLOOR_DATABASE_URL) a private TimescaleDB cluster is started in a
temp dir and removed afterwards; with --reuse a database loaded by an earlier run is used as is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg

from bench import kpi as bench_kpi
from bench.database import bench_database
from bench.kpi import END, load_average
from localenv.mosquitto import free_port, stop_process, wait_port
from storage import rollups
from storage.engine.session import configure as engine_session

LINE = "line1"
NOW = END - dt.timedelta(hours=1)  # the API's clock at its start: 05:00 Berlin, a night shift
PAST = {  # the early shift of the day before (06:00-14:00 Berlin)
    "start": (END - dt.timedelta(days=1)).isoformat(),
    "end": (END - dt.timedelta(days=1) + dt.timedelta(hours=8)).isoformat(),
}
PING = "/bench/ping"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the server (a subprocess: `python -m bench.api --serve ...`) --------------------------------


def serve(args: argparse.Namespace) -> None:
    """The API as `shopfloor serve` runs it, with the bench's clock, a ping route, and the cache
    on or off."""
    from fastapi import FastAPI

    from api.app import create_app
    from api.cache import ResultCache
    from api.server import serve as serve_api
    from collector.runner import settle_garbage_collector

    cfg = bench_kpi.config(args.machines)
    app: FastAPI = create_app(cfg, database_url=args.database_url)
    start, t0 = dt.datetime.fromisoformat(args.now), time.monotonic()
    app.state.clock = lambda: start + dt.timedelta(seconds=time.monotonic() - t0)
    if args.cache == "off":
        app.state.cache = ResultCache(ttl_s=0, keep_past=False)

    @app.get(PING, include_in_schema=False)
    async def ping() -> dict[str, str]:
        return {}

    settle_garbage_collector()
    settings = cfg.settings.api.model_copy(update={"port": args.port})
    asyncio.run(serve_api(app, settings))


class Server:
    """`python -m bench.api --serve` on a free port, until stopped."""

    def __init__(self, url: str, args: argparse.Namespace, cache: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.api",
                "--serve",
                "--database-url",
                url,
                "--machines",
                str(args.machines),
                "--port",
                str(self.port),
                "--cache",
                cache,
                "--now",
                NOW.isoformat(),
            ]
        )
        wait_port(self.port, timeout=30)
        self.base = f"http://127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def stop(self) -> None:
        stop_process(self.proc)


# --- the load --------------------------------------------------------------------------------------


@dataclass
class Figures:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    cpu_s: float

    def row(self, label: str) -> str:
        lat = sorted(self.latencies_ms)
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        return (
            f"  {label:<34} {self.requests / self.seconds:8.0f} {q[49]:8.1f} {q[94]:8.1f} "
            f"{q[98]:8.1f} {self.errors:7d} {1e3 * self.cpu_s / max(self.requests, 1):9.2f}"
            f"   {load_average()}"
        )


HEADER = (
    f"  {'case':<34} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
    f"{'CPU ms/req':>9}   load average"
)


class Connection:
    """One keep-alive HTTP/1.1 connection: GET and read the answer, nothing else. httpx spent
    ~3 ms of CPU per request at 50 connections, more than the server's cached answers cost, so
    the client would have been what was measured."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, target: bytes) -> tuple[int, bytes]:
        self.writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(v)
            for k, _, v in (h.partition(b":") for h in lines[1:])
            if k.lower() == b"content-length"
        )
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


Request = tuple[str, dict[str, str]]


def _target(request: Request) -> bytes:
    path, params = request
    return (path + ("?" + urlencode(params) if params else "")).encode()


async def drive(server: Server, requests: list[Request], clients: int, seconds: float) -> Figures:
    """`clients` concurrent clients, each on its own connection, back to back for `seconds`;
    client i sends requests[i], requests[i + 1], ... round the list."""
    targets = [_target(r) for r in requests]
    conns = [await Connection.open(server.port) for _ in range(clients)]
    try:
        for target in targets:  # warm-up, and a check
            status, body = await conns[0].get(target)
            if status != 200:
                raise SystemExit(f"{target!r}: {status} {body[:300]!r}")
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        errors = 0
        cpu0, t0 = server.cpu_s(), loop.time()
        deadline = t0 + seconds

        async def one(i: int, conn: Connection) -> None:
            nonlocal errors
            while loop.time() < deadline:
                sent = time.perf_counter()
                status, _ = await conn.get(targets[i % len(targets)])
                latencies.append((time.perf_counter() - sent) * 1e3)
                errors += status != 200
                i += 1

        await asyncio.gather(*(one(i, c) for i, c in enumerate(conns)))
        elapsed = loop.time() - t0
        return Figures(len(latencies), errors, elapsed, latencies, server.cpu_s() - cpu0)
    finally:
        for c in conns:
            await c.close()


def dashboard(machines: int) -> list[Request]:
    """What a wall screen of the plant asks every few seconds: lines with states, each line's
    KPIs, hourly series and downtime, each machine's timeline, one tag's trend."""
    lines = ["line1", "line2"] if machines > 1 else ["line1"]
    asks: list[Request] = [("/api/v1/lines", {})]
    for line in lines:
        asks += [
            (f"/api/v1/lines/{line}/kpis", {}),
            (f"/api/v1/lines/{line}/kpis/series", {"bucket": "1h"}),
            (f"/api/v1/lines/{line}/downtime", {}),
        ]
    asks += [(f"/api/v1/machines/m{i:02d}/timeline", {}) for i in range(machines)]
    asks.append(("/api/v1/tags/m00/temp/series", {"bucket": "1m"}))
    return asks


async def measure(url: str, args: argparse.Namespace) -> None:
    kpis = f"/api/v1/lines/{LINE}/kpis"
    mix = dashboard(args.machines)
    cases: list[tuple[str, str, list[Request]]] = [
        ("on", "ceiling (GET /bench/ping)", [(PING, {})]),
        ("on", "cache on, default window", [(kpis, {})]),
        ("on", "cache on, past window", [(kpis, PAST)]),
        ("on", f"cache on, dashboard ({len(mix)})", mix),
        ("off", "cache off, default window", [(kpis, {})]),
        ("off", "cache off, past window", [(kpis, PAST)]),
        ("off", f"cache off, dashboard ({len(mix)})", mix),
    ]
    print(f"{args.clients} clients, {args.seconds:g} s per case, {kpis} unless said")
    print(HEADER)
    for cache in ("on", "off"):
        server = Server(url, args, cache)
        try:
            for mode, label, asks in cases:
                if mode == cache:
                    figures = await drive(server, asks, args.clients, args.seconds)
                    print(figures.row(label), flush=True)
        finally:
            server.stop()
    alone = Server(url, args, "off")  # one request alone, for the 21 ms
    try:
        for label, params in (("default window", {}), ("past window", PAST)):
            figures = await drive(alone, [(kpis, params)], 1, min(args.seconds, 5))
            print(figures.row(f"1 client, no cache, {label}"), flush=True)
    finally:
        alone.stop()


# --- the database ----------------------------------------------------------------------------------


async def prepare(url: str, args: argparse.Namespace) -> None:
    """bench/kpi.py's plant and data (`--days`, `--machines`, `--analog-days`, and
    `counter_step_s` if args have it, else 1 s), then the rollups; nothing with `--reuse`."""
    cfg = bench_kpi.config(args.machines)
    if bench_kpi.prepare_schema(url, cfg, reuse=args.reuse):
        return
    load_args = argparse.Namespace(
        days=args.days,
        analog_days=args.analog_days,
        counter_step_s=getattr(args, "counter_step_s", 1),
        load_connections=2,
    )
    t0 = time.perf_counter()
    rows = await bench_kpi.load(url, cfg, load_args)
    print(f"loaded {rows:,} readings in {time.perf_counter() - t0:.1f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE readings")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await engine_session(conn)
        t0 = time.perf_counter()
        await rollups.refresh(conn, cfg, now=END - dt.timedelta(minutes=2))
        await conn.execute("ANALYZE machine_minutes")
        await conn.execute("ANALYZE machine_hours")
        print(f"rollups.refresh: {time.perf_counter() - t0:.1f} s; load average {load_average()}")


async def run(url: str, args: argparse.Namespace) -> None:
    await prepare(url, args)
    await measure(url, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--analog-days", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="use an already loaded database")
    parser.add_argument("--keep", action="store_true", help="keep the private cluster running")
    parser.add_argument("--database-url", default=os.environ.get("SHOPFLOOR_DATABASE_URL"))
    # the server subprocess
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cache", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return 0
    with bench_database(args.database_url, "api", keep=args.keep) as url:
        asyncio.run(run(url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
