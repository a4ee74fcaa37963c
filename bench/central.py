"""Several edges into one central database: N collectors' write path against one raw binary COPY
stream, and the central API's plant-wide KPIs while they write (issue 17).

    .venv/bin/python -m bench.central [--edges 1,2,4] [--window 20] [--warmup 5] [--rate R]
                                      [--requests 100] [--database-url URL] [--keep]

A plant of 4 lines, one per edge (`settings.edge: edge-N`), each line 5 machines of 20 tags:
state, stop reason, good / reject / total counters and 15 measurements, all synced into one
database. For each N of --edges, N writers run at once, each in its own process: edge k's
collector write path (`DatabaseSink.connect`: migrate, sync its plant; then `DatabaseSink.write`
of batches of `settings.collector.batch_rows`, 10,000). The rows are generated before the clock
starts, as `TagRouter.route` makes them (checked on each writer's first batch) from an OPC UA
source: the measurements at every poll (the volume), the counters and states on change (a
subscription's data changes; states re-recorded every 15 s), with time advancing at about the
expected rate, so rows are new and the rollups have real states and counts near now. Measured
over a steady window (--warmup excluded): rows/s from each writer's running count, CPU s per
10k rows of the writers, and the share of the 2 cores taken by the writers, the PostgreSQL
server (the postmaster and its children, when it runs on this machine), the rollups job and the
whole machine. The reference, ONE raw `COPY readings (...) FROM STDIN (FORMAT BINARY)` stream in
its own process (bench/ingest's), same batch size and row shape as one edge's polls (edge-1's 75
measurement tags, in the minutes before the first run), runs before the first N and after each,
so drift shows.

Rollups are refreshed like each collector's job does (`storage.rollups.refresh` with the edge's
config), every `settings.rollups.interval_s` (5 s here) for the writing edges, in one process
of their own (not counted as writers' CPU). With the largest N still writing after its window,
two central APIs (`shopfloor serve` on a config without lines, one with `cache_s: 0` so every
request is computed, one with the default 1 s) answer a bare httpx client, one request at a
time, --requests of each case: `/api/v1/overview` (every line's current-shift KPIs) from both,
and each line's `/api/v1/lines/{id}/kpis` from its current shift's start (the lines in turn:
never a cached answer) from the first; then the same with no writers. The calendar has three
8-hour shifts in UTC, so one always covers now. The pre-generated rows take RAM: up to about
3 GB with the defaults on a fast machine (sized from the raw stream's rate).

Without --database-url (or SHOPFLOOR_DATABASE_URL) a private TimescaleDB cluster is started in a
temp dir and removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
import yaml

from adapters.base import Quality, Reading
from bench.database import bench_database
from bench.e2e import Proc, cpu_seconds
from bench.ingest import raw_copy
from bench.kpi import REASONS, STATE_MAP, load_average
from collector.dbsink import DatabaseSink
from collector.heartbeat import StateHeartbeat
from collector.routing import TagRouter
from collector.rows import DbRow, Row
from collector.runner import settle_garbage_collector
from config import ShopfloorConfig, load_config
from localenv.mosquitto import free_port, wait_port
from storage import rollups
from storage.engine.session import configure as engine_session
from storage.migrate import migrate
from storage.plant_sync import sync_plant
from storage.writer import ReadingRow

PYTHON = sys.executable
SHOPFLOOR = str(Path(sys.executable).with_name("shopfloor"))
LINES = 4  # one per edge
MEASUREMENTS = (
    "temperature",
    "pressure",
    "speed",
    "current",
    "voltage",
    "vibration",
    "flow",
    "level",
    "torque",
    "humidity",
    "power",
    "rpm",
    "position",
    "force",
    "cycle_time",
)
IDEAL_CYCLE_S = 0.5
CYCLE_S = 0.55  # what the machines do: performance a little under 1
SLOT_S = 15.0  # a machine's state holds for a slot, re-recorded at each slot's start
CYCLES_PER_SLOT = int(SLOT_S / CYCLE_S)
REJECT_EVERY = 40  # every 40th part is a reject
VALUES = [20.0 + 5.0 * math.sin(i / 40) for i in range(997)]  # measurement values, shared
REF_SLOT = dt.timedelta(minutes=5)  # raw reference k: the k-th 5 minutes before the origin
API_CAP_S = 40.0  # the API phase stops after this even short of --requests
ROLLUP_INTERVAL_S = 5.0
NO_CACHE = "no cache"
BATCH_ROWS = 10_000  # settings.collector.batch_rows of every edge, and the raw stream's batch


def emit(**line: object) -> None:
    print(json.dumps(line), flush=True)


# -- the plant -----------------------------------------------------------------------------------


def machine_ids(line: int, machines: int) -> list[str]:
    return [f"l{line}m{m}" for m in range(1, machines + 1)]


def edge_document(line: int, machines: int) -> dict[str, Any]:
    """Edge `edge-<line>`: its line, the plant's calendar and stop reasons, one OPC UA source."""
    ids = machine_ids(line, machines)
    tags: list[dict[str, Any]] = []
    for mid in ids:
        node = f"ns=2;s={mid}."
        tags += [
            {"machine": mid, "name": "state", "signal": "state", "node": node + "state"},
            {"machine": mid, "name": "stop_reason", "signal": "stop_reason", "node": node + "sr"},
        ]
        for signal_ in ("good_count", "reject_count", "total_count"):
            tags.append(
                {
                    "machine": mid,
                    "name": signal_,
                    "signal": signal_,
                    "wrap": 4294967296,
                    "node": node + signal_,
                }
            )
        tags += [{"machine": mid, "name": m, "node": node + m} for m in MEASUREMENTS]
    shifts = [
        {"name": name, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], **span}
        for name, span in (
            ("early", {"start": "06:00", "end": "14:00"}),
            ("late", {"start": "14:00", "end": "22:00"}),
            ("night", {"start": "22:00", "end": "06:00"}),
        )
    ]
    return {
        "plant": "Central bench plant",
        "calendars": {"three-shift": {"timezone": "UTC", "shifts": shifts}},
        "stop_reasons": REASONS,
        "lines": [
            {
                "id": f"line{line}",
                "name": f"Line {line}",
                "calendar": "three-shift",
                "machines": [
                    {"id": mid, "ideal_cycle_s": IDEAL_CYCLE_S, "state_map": STATE_MAP}
                    for mid in ids
                ],
            }
        ],
        "sources": [
            {
                "name": f"edge{line}-plc",
                "protocol": "opcua",
                "endpoint": f"opc.tcp://127.0.0.1:4840/line{line}",
                "tags": tags,
            }
        ],
        "settings": {
            "edge": f"edge-{line}",
            "collector": {"batch_rows": BATCH_ROWS},
            "rollups": {"interval_s": ROLLUP_INTERVAL_S},
        },
    }


def write_configs(work: Path, machines: int) -> list[Path]:
    paths = []
    for line in range(1, LINES + 1):
        path = work / f"edge-{line}.yaml"
        path.write_text(yaml.safe_dump(edge_document(line, machines), sort_keys=False))
        paths.append(path)
    for name, cache_s in (("central-nocache", 0), ("central", 1)):
        doc = {"settings": {"api": {"cache_s": cache_s}}}
        (work / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    return paths


# -- generated traffic ---------------------------------------------------------------------------


def slot_state(machine: str, slot: int) -> tuple[float, float]:
    """(state, stop reason) of a machine in a slot: running 3 slots in 4, else down, idle or set
    up with a reason; the same in every process (a str seed is hashed with sha512)."""
    r = random.Random(f"{machine}/{slot}").random()
    if r < 0.75:
        return 1.0, 0.0
    if r < 0.87:
        return 3.0, float(101 + int(r * 1000) % 2)
    if r < 0.95:
        return 2.0, 201.0
    return 4.0, 301.0


@dataclass
class Counters:
    total: int = 0

    @property
    def reject(self) -> int:
        return self.total // REJECT_EVERY

    @property
    def good(self) -> int:
        return self.total - self.reject


Event = tuple[float, str, float]  # seconds since the origin, tag key, value


def machine_events(machine: str, origin_s: float, start_s: float, end_s: float) -> list[Event]:
    """What an OPC UA subscription delivers for the machine's KPI tags in [start, end): every
    value at `start`, then state and reason at each slot's start, counters at each change. The
    counters run from the origin (the bench's start), so successive runs continue them."""
    first, last = int((start_s - origin_s) // SLOT_S), int((end_s - origin_s) // SLOT_S)
    n = Counters()
    for slot in range(first):  # the counts before this run
        if slot_state(machine, slot)[0] == 1.0:
            n.total += CYCLES_PER_SLOT
    state, reason = slot_state(machine, first)
    done = int((start_s - origin_s - first * SLOT_S) // CYCLE_S) if state == 1.0 else 0
    n.total += min(done, CYCLES_PER_SLOT)
    key = f"{machine}."
    out: list[Event] = [
        (start_s, key + "state", state),
        (start_s, key + "stop_reason", reason),
        (start_s, key + "good_count", float(n.good)),
        (start_s, key + "reject_count", float(n.reject)),
        (start_s, key + "total_count", float(n.total)),
    ]
    for slot in range(first, last + 1):
        slot_s = origin_s + slot * SLOT_S
        state, reason = slot_state(machine, slot)
        if slot_s > start_s:
            out += [(slot_s, key + "state", state), (slot_s, key + "stop_reason", reason)]
        if state != 1.0:
            continue
        for k in range(1, CYCLES_PER_SLOT + 1):
            t = slot_s + k * CYCLE_S
            if not start_s < t < end_s:
                continue
            reject = n.reject
            n.total += 1
            changed = "reject_count" if n.reject != reject else "good_count"
            value = n.reject if changed == "reject_count" else n.good
            out += [(t, key + changed, float(value)), (t, key + "total_count", float(n.total))]
    return [e for e in out if e[0] < end_s]


def edge_rows(
    cfg: ShopfloorConfig, origin: dt.datetime, start: dt.datetime, rows: int, poll_us: int
) -> list[Row]:
    """At least `rows` rows of the edge from `start`: each poll one row per measurement tag (at
    `poll_us` apart), the machines' events merged in at their own times."""
    measured = [
        (tag.key, 131 * j % len(VALUES))
        for j, tag in enumerate(t for s in cfg.sources for t in s.tags)
        if tag.signal == "measurement"
    ]
    polls = -(-rows // len(measured))
    origin_s = origin.timestamp()
    start_s = start.timestamp()
    end_s = start_s + polls * poll_us / 1e6
    events = sorted(e for m in cfg.machines() for e in machine_events(m, origin_s, start_s, end_s))
    out: list[Row] = []
    append, extend = out.append, out.extend
    e, n_values = 0, len(VALUES)
    values = VALUES
    for p in range(polls):
        ts = start + dt.timedelta(microseconds=p * poll_us)
        ts_s = start_s + p * poll_us / 1e6
        while e < len(events) and events[e][0] <= ts_s:
            t, key, value = events[e]
            append((origin + dt.timedelta(seconds=t - origin_s), key, value, 0, None))
            e += 1
        extend([(ts, key, values[(p + off) % n_values], 0, None) for key, off in measured])
    return out


def check_routing(cfg: ShopfloorConfig, rows: Sequence[Row]) -> None:
    """The same rows come out of the collector's TagRouter for the readings they stand for."""
    address = {t.key: (s.name, t.reading_address) for s in cfg.sources for t in s.tags}
    readings = [
        Reading(*address[key], ts, value, Quality.GOOD, None) for ts, key, value, _, _ in rows
    ]
    routed = TagRouter(cfg, StateHeartbeat(cfg.settings.kpi.heartbeat_s)).route(readings)
    if routed.rows != list(rows) or routed.rejected:
        raise SystemExit(f"{cfg.settings.edge}: generated rows differ from what TagRouter makes")


def batches_of(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


# -- the roles (each its own process) ------------------------------------------------------------


class Signals:
    """SIGUSR1 starts a role's loop (every writer of a group at once), SIGTERM ends it between
    two batches."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self.go.set)
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()


async def write_loop(
    signals: Signals,
    batches: Sequence[Sequence[Any]],
    write: Callable[[Any], Any],
    rate: float = 0,
) -> None:
    """Once started, batch after batch, a {"t", "n"} line after each, until stopped or out of
    rows; with a `rate` (rows/s), no faster than that."""
    await signals.go.wait()
    n = 0
    began = time.monotonic()
    emit(t=time.time(), n=n)
    for batch in batches:
        if signals.stopped:
            break
        await write(batch)
        n += len(batch)
        emit(t=time.time(), n=n)
        if rate:
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
    else:
        emit(exhausted=time.time())
        while not signals.stopped:  # samples go on: the rate over a window past here is right
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signals.stop.wait(), 0.2)
            emit(t=time.time(), n=n)


async def writer_role(args: argparse.Namespace) -> None:
    cfg = load_config(args.config)
    origin, start = dt.datetime.fromisoformat(args.origin), dt.datetime.fromisoformat(args.start)
    rows = edge_rows(cfg, origin, start, args.rows, args.poll_us)
    batches = batches_of(rows, cfg.settings.collector.batch_rows)
    check_routing(cfg, batches[0])
    end = max(r[0] for r in batches[-1])
    sink = DatabaseSink(cfg, args.database_url)
    if not await sink.connect():
        raise SystemExit(f"cannot connect: {sink.last_error}")
    settle_garbage_collector()  # as the collector does after start-up
    signals = Signals()
    emit(ready=True, rows=len(rows), end=end.isoformat())
    del rows

    async def write(batch: list[Row]) -> None:
        result = await sink.write(batch)
        if result.inserted != len(batch) or result.rejected:
            raise SystemExit(f"{cfg.settings.edge}: {result}")

    await write_loop(signals, batches, write, args.rate)
    await sink.close()


async def raw_role(args: argparse.Namespace) -> None:
    """One raw binary COPY stream, bench/ingest's reference, of what one edge's polls carry:
    edge-1's measurement tags, 1 ms apart, in the k-th 5 minutes before the origin (the day's
    chunk, as the writers'; no rollup work; never overlapping another run)."""
    with psycopg.connect(args.database_url) as sync:
        ids = [
            r[0]
            for r in sync.execute(
                "SELECT t.id FROM tags t JOIN machines m ON m.id = t.machine_id "
                "WHERE m.edge = 'edge-1' AND t.signal = 'measurement' ORDER BY t.id"
            )
        ]
    base = dt.datetime.fromisoformat(args.origin) - (args.k + 1) * REF_SLOT
    rows: list[DbRow] = []
    for p in range(-(-args.rows // len(ids))):
        ts = base + dt.timedelta(milliseconds=p)
        rows.extend([(ts, i, VALUES[(p + i) % len(VALUES)], 0, None) for i in ids])
    batches = batches_of(rows, BATCH_ROWS)
    del rows
    conn = await psycopg.AsyncConnection.connect(args.database_url, autocommit=True)
    settle_garbage_collector()
    signals = Signals()
    emit(ready=True)

    async def write(batch: list[DbRow]) -> None:
        await raw_copy(conn, cast(list[ReadingRow], batch))

    await write_loop(signals, batches, write)
    await conn.close()


async def rollups_role(args: argparse.Namespace) -> None:
    """Each writing edge's rollups, as its collector's job refreshes them, until stopped."""
    cfgs = [load_config(path) for path in args.configs]
    signals = Signals()
    async with await psycopg.AsyncConnection.connect(args.database_url, autocommit=True) as conn:
        await engine_session(conn)
        emit(ready=True)
        while not signals.stopped:
            t0 = time.perf_counter()
            for cfg in cfgs:
                await rollups.refresh(conn, cfg, now=dt.datetime.now(dt.UTC))
            emit(refresh_s=time.perf_counter() - t0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signals.stop.wait(), ROLLUP_INTERVAL_S)


# -- measuring -----------------------------------------------------------------------------------


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


class ServerCpu:
    """CPU seconds of the PostgreSQL server (its postmaster and every child), when it runs on
    this machine; None otherwise."""

    def __init__(self, url: str) -> None:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        self.postmaster: int | None = None
        with contextlib.suppress(OSError, TypeError):
            self.postmaster = _ppid(int(row[0]))  # type: ignore[index]

    def sample(self) -> dict[int, float] | None:
        if self.postmaster is None:
            return None
        out = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    pid = int(entry.name)
                    if pid == self.postmaster or _ppid(pid) == self.postmaster:
                        out[pid] = cpu_seconds(pid)
        return out

    @staticmethod
    def spent(a: dict[int, float] | None, b: dict[int, float] | None) -> float | None:
        """CPU between two samples (a process born in between: all of its time)."""
        if a is None or b is None:
            return None
        return sum(cpu - a.get(pid, 0.0) for pid, cpu in b.items())


def machine_busy() -> tuple[float, float]:
    """(busy, all) jiffies of every core so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class Snapshot:
    t: float
    procs: dict[int, float]
    server: dict[int, float] | None
    busy: tuple[float, float]

    @classmethod
    def take(cls, pids: Sequence[int], server: ServerCpu) -> Snapshot:
        return cls(time.time(), {p: cpu_seconds(p) for p in pids}, server.sample(), machine_busy())


@dataclass
class Figures:
    """One measured span of a group of writers (or the raw stream)."""

    rows_per_s: float
    seconds: float
    writer_cpu: float  # CPU s of the group's processes in the span
    busiest_writer: float  # CPU s of the busiest one
    side_cpu: dict[str, float]  # CPU s of the other processes named (rollups, API servers)
    server_cpu: float | None
    busy: float  # of the whole machine, 0..1
    notes: list[str] = field(default_factory=list)

    def per_10k(self, cpu: float | None) -> str:
        """CPU s per 10,000 rows written."""
        return "n/a" if cpu is None else f"{cpu / (self.rows_per_s * self.seconds) * 1e4:.4f}"

    def cores(self, cpu: float | None) -> str:
        return "n/a" if cpu is None else f"{cpu / self.seconds:.2f}"


def between(
    writers: Sequence[Proc], side: dict[str, Proc], server: ServerCpu, a: Snapshot, b: Snapshot
) -> Figures:
    span = b.t - a.t
    rate = sum(w.rate(a.t, b.t) for w in writers)
    cpu = {p: b.procs[p] - a.procs[p] for p in a.procs}
    notes = []
    for w in writers:
        out = next((line["exhausted"] for line in w.lines if "exhausted" in line), None)
        if out is not None and out < b.t:
            notes.append(f"{w.name} ran out of rows {b.t - out:.1f} s before the end")
    return Figures(
        rows_per_s=rate,
        seconds=span,
        writer_cpu=sum(cpu[w.pid] for w in writers),
        busiest_writer=max(cpu[w.pid] for w in writers),
        side_cpu={name: cpu[p.pid] for name, p in side.items()},
        server_cpu=ServerCpu.spent(a.server, b.server),
        busy=(b.busy[0] - a.busy[0]) / max(b.busy[1] - a.busy[1], 1),
        notes=notes,
    )


# -- the central API -----------------------------------------------------------------------------


@dataclass
class Latencies:
    ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    server_cpu: dict[str, float] = field(default_factory=dict)  # per API process, in the span

    def rows(self) -> Iterator[tuple[str, int, float, float, float, int]]:
        for name, ms in self.ms.items():
            q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
            yield name, len(ms), q[49], q[94], max(ms), self.errors.get(name, 0)


class CentralApi:
    """`shopfloor serve` on a config without lines (the plant from the database), cache off and
    on, each in its own process."""

    def __init__(self, work: Path, url: str) -> None:
        self.procs: dict[str, Proc] = {}
        self.ports: dict[str, int] = {}
        for label, name in ((NO_CACHE, "central-nocache"), ("cache 1 s", "central")):
            port = free_port()
            argv = [SHOPFLOOR, "serve", "--config", str(work / f"{name}.yaml")]
            argv += ["--database-url", url, "--port", str(port)]
            self.procs[label], self.ports[label] = Proc(f"api-{name}", argv, work), port
        for port in self.ports.values():
            wait_port(port, timeout=60)

    def targets(self, lines: int) -> dict[str, list[str]]:
        """Per case, the URLs it cycles through, once every line is served."""
        out: dict[str, list[str]] = {}
        with httpx.Client(timeout=30) as client:
            for label, port in self.ports.items():
                base = f"http://127.0.0.1:{port}/api/v1"
                deadline = time.monotonic() + 30
                while True:
                    r = client.get(f"{base}/overview")
                    if r.status_code == 200 and r.json()["count"] == lines:
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"central API ({label}): {r.status_code} {r.text[:300]}")
                    time.sleep(0.5)
                first = r.json()["data"][0]
                print(
                    f"central API ({label}): {first['id']} current shift: OEE "
                    f"{first['kpis']['oee']}, good {first['kpis']['good_count']}, flags "
                    f"{first['kpis']['flags']}",
                    file=sys.stderr,
                )
                out[f"overview ({lines} lines), {label}"] = [f"{base}/overview"]
                if label != NO_CACHE:
                    continue  # a window to now, the lines in turn: never a cached answer
                kpis = []
                for line in range(1, lines + 1):
                    windows = client.get(f"{base}/lines/line{line}/windows").json()["windows"]
                    shift = next(w for w in windows if w["key"] == "current_shift")
                    kpis.append(
                        f"{base}/lines/line{line}/kpis?"
                        + str(httpx.QueryParams({"start": shift["start"]}))
                    )
                out[f"line KPIs, shift so far, {label}"] = kpis
        return out

    def ask(self, targets: dict[str, list[str]], requests: int) -> Latencies:
        """One request at a time round the cases until each has `requests` answers."""
        result = Latencies({case: [] for case in targets}, {case: 0 for case in targets})
        cpu0 = {label: cpu_seconds(p.pid) for label, p in self.procs.items()}
        deadline = time.monotonic() + API_CAP_S
        with httpx.Client(timeout=30) as client:
            i = 0
            while time.monotonic() < deadline and any(
                len(ms) < requests for ms in result.ms.values()
            ):
                for case, urls in targets.items():
                    t0 = time.perf_counter()
                    r = client.get(urls[i % len(urls)])
                    result.ms[case].append((time.perf_counter() - t0) * 1e3)
                    result.errors[case] += r.status_code != 200
                i += 1
        for label, p in self.procs.items():
            result.server_cpu[label] = cpu_seconds(p.pid) - cpu0[label]
        return result

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop()


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    url: str
    work: Path
    configs: list[Path]
    origin: dt.datetime
    server: ServerCpu
    next_start: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def role(self, name: str, role: str, **options: object) -> Proc:
        argv = [PYTHON, "-m", "bench.central", "--role", role, "--database-url", self.url]
        for key, value in options.items():
            if isinstance(value, list):
                argv += [f"--{key.replace('_', '-')}", *map(str, value)]
            else:
                argv += [f"--{key.replace('_', '-')}", str(value)]
        return Proc(name, argv, self.work)

    @staticmethod
    def go(procs: Sequence[Proc]) -> None:
        for p in procs:
            os.kill(p.pid, signal.SIGUSR1)

    def raw(self, k: int, expected: float) -> Figures:
        """The raw COPY stream alone over a short window."""
        warmup, window = min(1.0, self.args.warmup), max(5.0, self.args.window / 4)
        rows = int(expected * (warmup + window + 3) * 1.5)
        per_poll = len(MEASUREMENTS) * self.args.machines
        rows = min(rows, int(REF_SLOT.total_seconds() * 1000) * per_poll)  # within its slot
        proc = self.role(f"raw-{k}", "raw", k=k, rows=rows, origin=self.origin.isoformat())
        try:
            proc.wait_for("ready", timeout=300)
            self.go([proc])
            time.sleep(warmup)
            a = Snapshot.take([proc.pid], self.server)
            time.sleep(window)
            b = Snapshot.take([proc.pid], self.server)
            time.sleep(1.0)  # a sample after b
            return between([proc], {}, self.server, a, b)
        finally:
            proc.stop()

    def writers(
        self, n: int, expected: float, api: CentralApi | None
    ) -> tuple[Figures, Figures | None, Latencies | None, list[float]]:
        """N writers over the window; with `api`, then the API's latency while they go on."""
        extra = API_CAP_S if api else 0.0
        paced = self.args.rate / n if self.args.rate else 0.0
        per_writer = paced or expected / n
        rows = int(per_writer * (1.2 * (self.args.warmup + self.args.window + 3) + 0.8 * extra))
        # data time advances at about wall time when the group writes at `expected` rows/s
        poll_us = max(1, round(len(MEASUREMENTS) * self.args.machines / per_writer * 1e6))
        start = max(self.next_start, dt.datetime.now(dt.UTC)).replace(microsecond=0)
        procs = [
            self.role(
                f"writer-{n}-{k}",
                "writer",
                config=self.configs[k - 1],
                origin=self.origin.isoformat(),
                start=start.isoformat(),
                rows=rows,
                poll_us=poll_us,
                rate=paced,
            )
            for k in range(1, n + 1)
        ]
        side: dict[str, Proc] = {}
        try:
            ends = [dt.datetime.fromisoformat(p.wait_for("ready", 600)["end"]) for p in procs]
            self.next_start = max(ends) + dt.timedelta(seconds=1)
            side["rollups"] = self.role(f"rollups-{n}", "rollups", configs=self.configs[:n])
            side["rollups"].wait_for("ready")
            if api is not None:
                side.update({f"api {label}": p for label, p in api.procs.items()})
            pids = [p.pid for p in procs] + [p.pid for p in side.values()]
            self.go(procs)
            time.sleep(self.args.warmup)
            a = Snapshot.take(pids, self.server)
            time.sleep(self.args.window)
            b = Snapshot.take(pids, self.server)
            time.sleep(1.0)  # a sample after b
            figures = between(procs, side, self.server, a, b)
            during: Figures | None = None
            latencies: Latencies | None = None
            if api is not None:
                targets = api.targets(LINES)
                c = Snapshot.take(pids, self.server)
                latencies = api.ask(targets, self.args.requests)
                d = Snapshot.take(pids, self.server)
                time.sleep(1.0)
                during = between(procs, side, self.server, c, d)
            refresh = [line["refresh_s"] for line in side["rollups"].lines if "refresh_s" in line]
            return figures, during, latencies, refresh
        finally:
            for p in [*procs, *side.values()]:
                if not p.name.startswith("api"):
                    p.stop()


def setup(url: str, configs: Sequence[Path]) -> None:
    with psycopg.connect(url) as conn:
        migrate(conn)
        for path in configs:
            sync_plant(conn, load_config(path))


async def refresh_all(url: str, configs: Sequence[Path]) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await engine_session(conn)
        for path in configs:
            await rollups.refresh(conn, load_config(path), now=dt.datetime.now(dt.UTC))


def run(url: str, args: argparse.Namespace, work: Path) -> None:
    configs = write_configs(work, args.machines)
    setup(url, configs)
    origin = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    bench = Bench(args, url, work, configs, origin, ServerCpu(url))
    guess = 300_000.0  # rows/s of the first raw stream, to size what it pre-generates
    refs = [bench.raw(0, guess)]
    bench.log(f"raw COPY: {refs[0].rows_per_s:,.0f} rows/s; load average {load_average()}")
    results: list[tuple[int, Figures, list[float]]] = []
    during: tuple[Figures, Latencies] | None = None
    api: CentralApi | None = None
    largest = max(args.edges)
    try:
        for k, n in enumerate(args.edges, start=1):
            if n == largest:
                api = CentralApi(work, url)
            # sizes what is pre-generated: several streams may outrun one
            expected = 1.3 * max(r.rows_per_s for r in refs)
            figures, busy, latencies, refresh = bench.writers(n, expected, api)
            results.append((n, figures, refresh))
            if busy is not None and latencies is not None:
                during = (busy, latencies)
            bench.log(
                f"{n} writers: {figures.rows_per_s:,.0f} rows/s; load average {load_average()}"
            )
            refs.append(bench.raw(k, max(r.rows_per_s for r in refs)))
            bench.log(f"raw COPY: {refs[-1].rows_per_s:,.0f} rows/s")
        idle: Latencies | None = None
        if api is not None:
            asyncio.run(refresh_all(url, configs))
            idle = api.ask(api.targets(LINES), args.requests)
    finally:
        if api is not None:
            api.stop()
    report(refs, results, during, idle)


def report(
    refs: list[Figures],
    results: list[tuple[int, Figures, list[float]]],
    during: tuple[Figures, Latencies] | None,
    idle: Latencies | None,
) -> None:
    print(
        "ingest: rows/s over the window; cores = CPU s per wall s (2 cores; the machine's "
        "busy share includes other work on it)"
    )
    print(
        "  CPU s/10k rows: of the writers together, of the server; cores: all writers, the "
        "busiest writer, the server, the rollups job; busy: the whole machine"
    )
    print(
        f"  {'case':<14} {'rows/s':>9} {'raw before/after':>17} {'ratio':>6} "
        f"{'writers/10k':>11} {'server/10k':>10} {'cores':>7} {'busiest':>7} {'server':>6} "
        f"{'rollups':>7} {'busy':>5}"
    )
    for i, (n, f, refresh) in enumerate(results):
        before, after = refs[i].rows_per_s, refs[i + 1].rows_per_s
        ratio = f.rows_per_s / statistics.mean((before, after))
        raw = f"{before / 1e3:.0f}k/{after / 1e3:.0f}k"
        print(
            f"  {f'{n} writer(s)':<14} {f.rows_per_s:>9,.0f} {raw:>17} {ratio:>6.2f} "
            f"{f.per_10k(f.writer_cpu):>11} {f.per_10k(f.server_cpu):>10} "
            f"{f.cores(f.writer_cpu):>7} {f.cores(f.busiest_writer):>7} "
            f"{f.cores(f.server_cpu):>6} {f.cores(f.side_cpu['rollups']):>7} {f.busy:>5.0%}"
        )
        if refresh:
            print(
                f"    rollups refresh of {n} edge(s): {len(refresh)} runs, mean "
                f"{statistics.mean(refresh):.2f} s, max {max(refresh):.2f} s"
            )
        for note in f.notes:
            print(f"    note: {note}")
    raw_server = [r.server_cpu / (r.rows_per_s * r.seconds) for r in refs if r.server_cpu]
    if raw_server:
        print(
            "  server CPU per row (what a central server with its own cores spends; edges on "
            f"their own PCs): raw COPY {statistics.mean(raw_server) * 1e6:.2f} µs"
        )
        for n, f, _ in results:
            if f.server_cpu is not None:
                per_row = f.server_cpu / (f.rows_per_s * f.seconds)
                print(
                    f"    {n} writer(s) {per_row * 1e6:.2f} µs: raw / writers "
                    f"{statistics.mean(raw_server) / per_row:.2f}"
                )
    for k, ref in enumerate(refs):
        print(
            f"  raw COPY {k}: {ref.rows_per_s:,.0f} rows/s, CPU s/10k rows: client "
            f"{ref.per_10k(ref.writer_cpu)}, server {ref.per_10k(ref.server_cpu)}; cores: client "
            f"{ref.cores(ref.writer_cpu)}, server {ref.cores(ref.server_cpu)}; busy {ref.busy:.0%}"
        )
    cases: list[tuple[str, Latencies | None, Figures | None]] = [
        ("while writing", during[1] if during else None, during[0] if during else None),
        ("no writers", idle, None),
    ]
    for title, lat, meanwhile in cases:
        if lat is None:
            continue
        line = f"central API, {title}"
        if meanwhile is not None:
            m = meanwhile
            line += (
                f" ({m.rows_per_s:,.0f} rows/s meanwhile; server {m.cores(m.server_cpu)} cores, "
                f"writers {m.cores(m.writer_cpu)}, busy {m.busy:.0%})"
            )
        print(line)
        for note in meanwhile.notes if meanwhile is not None else []:
            print(f"  note: {note}")
        print(f"  {'case':<44} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'errors':>6}")
        for case, n, p50, p95, top, errors in lat.rows():
            print(f"  {case:<44} {n:>5} {p50:>8.1f} {p95:>8.1f} {top:>8.1f} {errors:>6}")
        for label, cpu in lat.server_cpu.items():
            asked = sum(len(ms) for case, ms in lat.ms.items() if case.endswith(label))
            print(f"  API process ({label}): {1e3 * cpu / max(asked, 1):.1f} ms CPU per request")
    print(f"load average {load_average()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--edges",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2, 4],
        help=f"writer counts, each 1..{LINES}",
    )
    parser.add_argument("--window", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--requests", type=int, default=100, help="API answers per case")
    parser.add_argument("--machines", type=int, default=5, help="per line")
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="rows/s all writers together write at (default: as fast as they can), e.g. a "
        "plant's rate for the API's latency beside it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    parser.add_argument("--database-url", default=os.environ.get("SHOPFLOOR_DATABASE_URL"))
    # the roles' own processes
    parser.add_argument("--role", choices=("writer", "raw", "rollups"), help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--configs", type=Path, nargs="*", help=argparse.SUPPRESS)
    for hidden in ("--origin", "--start"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    for hidden in ("--rows", "--poll-us", "--k"):
        parser.add_argument(hidden, type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role = {"writer": writer_role, "raw": raw_role, "rollups": rollups_role}[args.role]
        asyncio.run(role(args))
        return 0
    if not all(1 <= n <= LINES for n in args.edges):
        parser.error(f"--edges: each between 1 and {LINES}")
    work = Path(tempfile.mkdtemp(prefix="shopfloor-central-"))
    print(f"work dir {work}", file=sys.stderr)
    try:
        with bench_database(args.database_url, "central") as url:
            run(url, args, work)
    finally:
        if args.keep:
            print(f"work dir kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
