"""KPI engine benchmark: latency of line KPIs, series, downtime and a tag series over a month.

    .venv/bin/python -m bench.kpi [--days 30] [--machines 10] [--counter-step-s 1]
                                  [--analog-days 30] [--runs 20] [--load-connections 2]
                                  [--refresh-connections 2] [--load-only] [--keep]
                                  [--database-url URL [--reuse]]

Loads `--days` days for `--machines` machines (two lines, a three-shift Berlin calendar with
breaks), as issue #6 asks: states on change plus the collector's 30 s heartbeat, reasons on every
change, total and reject counters at 1 Hz (`--counter-step-s`), and 3 analog tags at 1 Hz over the
last `--analog-days` days (default: all of them; ~130M readings). Then VACUUM ANALYZE, one
rollups.refresh (its machines shared over `--refresh-connections`), and each query `--runs` times
(p50 / p95) on a connection set up as the API's pool sets up its own (storage.engine.session:
jit = off); downtime (7 and 30 days, line and machine) from rollups and raw-only side by side,
after comparing the two answers. Without --database-url (or SHOPFLOOR_DATABASE_URL) it starts a private
TimescaleDB cluster in a temp dir and removes it afterwards; with `--reuse` a database at that URL
already loaded by an earlier run (it has readings) is used as it is: no load (migrations still run:
one that adds rollups makes the refresh recompute them), and the refresh then only redoes what is
not yet covered (for profiling). `--load-only` stops after loading; `--keep` leaves the private
cluster running and prints its directory and URL for `--database-url URL --reuse`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Literal

import psycopg
import yaml

from bench.database import bench_database
from collector.runner import settle_garbage_collector
from config import ShopfloorConfig
from config.loader import parse_config
from storage import rollups, tag_series
from storage.engine import DowntimeRow, KpiEngine
from storage.engine.session import configure as engine_session
from storage.migrate import migrate
from storage.plant_sync import sync_plant
from storage.retention import ROLLUP_TABLES
from storage.writer import BatchWriter, ReadingRow

END = dt.datetime(2026, 4, 1, 4, 0, tzinfo=dt.UTC)  # a shift edge: 06:00 CEST
STATE_MAP = {0: "planned_stop", 1: "running", 2: "idle", 3: "down", 4: "setup"}
REASONS = [
    {"code": 101, "text": "jam", "category": "failure"},
    {"code": 102, "text": "motor", "category": "failure"},
    {"code": 201, "text": "starved", "category": "idle"},
    {"code": 301, "text": "changeover", "category": "setup"},
]


def config(machines: int) -> ShopfloorConfig:
    ids = [f"m{i:02d}" for i in range(machines)]
    half = (machines + 1) // 2
    groups = [ids[:half], ids[half:]] if machines > 1 else [ids]
    shifts = [
        {"name": "early", "start": "06:00", "end": "14:00", "days": DAYS,
         "breaks": [{"start": "09:00", "end": "09:15"}, {"start": "12:00", "end": "12:30"}]},
        {"name": "late", "start": "14:00", "end": "22:00", "days": DAYS,
         "breaks": [{"start": "18:00", "end": "18:30"}]},
        {"name": "night", "start": "22:00", "end": "06:00", "days": DAYS,
         "breaks": [{"start": "02:00", "end": "02:30"}]},
    ]  # fmt: skip
    tags = []
    for m in ids:
        for name, signal in (
            ("state", "state"),
            ("reason", "stop_reason"),
            ("total", "total_count"),
            ("reject", "reject_count"),
            ("temp", "measurement"),
            ("speed", "measurement"),
            ("pressure", "measurement"),
        ):
            tags.append({"machine": m, "name": name, "signal": signal, "topic": f"b/{m}/{name}"})
    doc = {
        "calendars": {"cal": {"timezone": "Europe/Berlin", "shifts": shifts}},
        "stop_reasons": REASONS,
        "lines": [
            {
                "id": f"line{i + 1}",
                "calendar": "cal",
                "machines": [{"id": m, "ideal_cycle_s": 1.0, "state_map": STATE_MAP} for m in g],
            }
            for i, g in enumerate(groups)
            if g
        ],
        "sources": [{"name": "plc", "protocol": "mqtt", "host": "127.0.0.1", "tags": tags}],
    }
    return parse_config(yaml.safe_dump(doc, sort_keys=False))


DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


Change = tuple[dt.datetime, int, int]  # (time, state, reason code)


def story(start: dt.datetime, end: dt.datetime, seed: int) -> list[Change]:
    """A machine's state changes on whole seconds: runs (mean 10 min) and stops (mean 90 s)
    with reasons."""
    rng = random.Random(seed)
    changes: list[Change] = []
    t = start
    while t < end:
        changes.append((t, 1, 0))
        t += dt.timedelta(seconds=max(1, round(rng.expovariate(1 / 600))))
        if t >= end:
            break
        code, state = rng.choice([(101, 3), (102, 3), (201, 2), (301, 4)])
        changes.append((t, state, code))
        t += dt.timedelta(seconds=max(1, round(rng.expovariate(1 / 90))))
    return changes


def state_rows(ids: dict[str, int], changes: list[Change], end: dt.datetime) -> list[ReadingRow]:
    """States on change plus the collector's 30 s heartbeat; the reason on every change."""
    rows: list[ReadingRow] = []
    heartbeat = dt.timedelta(seconds=30)
    for i, (ct, state, code) in enumerate(changes):
        nxt = changes[i + 1][0] if i + 1 < len(changes) else end
        rows.append(ReadingRow(ct, ids["reason"], float(code)))
        cur = ct
        while cur < nxt:
            rows.append(ReadingRow(cur, ids["state"], float(state)))
            cur += heartbeat
    return rows


# Counters every second, computed by the server from the story's segments: a part per 1.2 s of
# run time (1 % rejects), cumulative. `r` = run seconds before the segment's start.
_COUNTERS_SQL = """
INSERT INTO readings (time, tag_id, value)
SELECT g.t, c.tag,
       floor((s.r + CASE WHEN s.running THEN extract(epoch FROM g.t - s.a) ELSE 0 END)
             / 1.2 * c.factor)
FROM (VALUES (1, %(total)s::int, 1.0::float8), (2, %(reject)s::int, 0.01::float8))
     AS c (k, tag, factor)
CROSS JOIN unnest(%(a)s::timestamptz[], %(b)s::timestamptz[], %(running)s::bool[],
                  %(r)s::float8[]) WITH ORDINALITY AS s (a, b, running, r, i)
CROSS JOIN LATERAL generate_series(s.a, s.b - interval '1 s', %(step)s::interval) AS g (t)
ORDER BY c.k, s.i, g.t
"""

# Analog tags at 1 Hz: a 10-minute saw tooth.
_ANALOG_SQL = """
INSERT INTO readings (time, tag_id, value)
SELECT g.t, tag, 20.0 + (extract(epoch FROM g.t)::bigint %% 600) / 60.0
FROM unnest(%(tags)s::int[]) AS tag
CROSS JOIN generate_series(%(a)s::timestamptz, %(b)s::timestamptz - interval '1 s',
                           interval '1 s') AS g (t)
ORDER BY tag, g.t
"""


def day_segments(
    changes: list[Change], end: dt.datetime, d0: dt.datetime, d1: dt.datetime
) -> dict[str, list[object]]:
    """The story's segments clipped to [d0, d1), with run seconds before each, as arrays."""
    out: dict[str, list[object]] = {"a": [], "b": [], "running": [], "r": []}
    run = 0.0
    for i, (a, state, _) in enumerate(changes):
        b = changes[i + 1][0] if i + 1 < len(changes) else end
        lo, hi = max(a, d0), min(b, d1)
        if lo < hi:
            out["a"].append(lo)
            out["b"].append(hi)
            out["running"].append(state == 1)
            out["r"].append(run + ((lo - a).total_seconds() if state == 1 else 0.0))
        if state == 1:
            run += (b - a).total_seconds()
        if a >= d1:
            break
    return out


async def load(url: str, cfg: ShopfloorConfig, args: argparse.Namespace) -> int:
    """States and reasons through the BatchWriter; counters and analog tags generated by the
    server (INSERT .. SELECT generate_series), one machine-day per statement on two
    connections: the 1 Hz month is ~130M rows, too many to build in Python in minutes."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT machine_id, name, id FROM tags").fetchall()
    by_machine: dict[str, dict[str, int]] = {}
    for m, name, tid in rows:
        by_machine.setdefault(m, {})[name] = tid
    start = END - dt.timedelta(days=args.days)
    a0 = END - dt.timedelta(days=args.analog_days)
    stories = {m: story(start, END, seed=n) for n, m in enumerate(sorted(by_machine))}
    count = 0
    writer = await BatchWriter.connect(url)
    try:
        for m, ids in sorted(by_machine.items()):
            batch = state_rows(ids, stories[m], END)
            for i in range(0, len(batch), 200_000):
                res = await writer.write(batch[i : i + 200_000])
                assert not res.rejected
            count += len(batch)
    finally:
        await writer.close()
    jobs: list[tuple[str, dict[str, object]]] = []
    day = dt.timedelta(days=1)
    d0 = start
    while d0 < END:
        d1 = min(d0 + day, END)
        for m, ids in sorted(by_machine.items()):
            seg = day_segments(stories[m], END, d0, d1)
            step = dt.timedelta(seconds=args.counter_step_s)
            jobs.append(
                (
                    _COUNTERS_SQL,
                    {**seg, "step": step, "total": ids["total"], "reject": ids["reject"]},
                )
            )
            lo = max(d0, a0)
            if lo < d1:
                tags = [ids[n] for n in ("temp", "speed", "pressure")]
                jobs.append((_ANALOG_SQL, {"a": lo, "b": d1, "tags": tags}))
        d0 = d1
    queue: asyncio.Queue[tuple[str, dict[str, object]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    done = [0]

    async def worker() -> int:
        n = 0
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            while not queue.empty():
                query, params = queue.get_nowait()
                cur = await conn.execute(query, params)
                n += cur.rowcount
                done[0] += 1
                if done[0] % 50 == 0:
                    print(f"  {done[0]}/{len(jobs)} load statements", file=sys.stderr)
        return n

    counts = await asyncio.gather(*(worker() for _ in range(args.load_connections)))
    return count + sum(counts)


async def timed(runs: int, fn: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    await fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * len(times)) - 1)]


def prepare_schema(url: str, cfg: ShopfloorConfig, *, reuse: bool) -> bool:
    """True when `reuse` and the database holds readings already; else sync the plant. Migrates
    either way (a reused database gets the migrations written since it was loaded)."""
    with psycopg.connect(url, autocommit=True) as conn:
        loaded = bool(
            reuse
            and conn.execute("SELECT to_regclass('readings') IS NOT NULL").fetchone()[0]  # type: ignore[index]
            and conn.execute("SELECT EXISTS (SELECT FROM readings)").fetchone()[0]  # type: ignore[index]
        )
        migrate(conn)
        if not loaded:
            sync_plant(conn, cfg, now=END - dt.timedelta(days=400))
    return loaded


async def run(url: str, args: argparse.Namespace) -> None:
    cfg = config(args.machines)
    now = END + dt.timedelta(minutes=3)  # the window "ends now": a raw edge at the right
    loaded = prepare_schema(url, cfg, reuse=args.reuse)
    if not loaded:
        t0 = time.perf_counter()
        rows = await load(url, cfg, args)
        load_s = time.perf_counter() - t0
        print(f"loaded {rows:,} readings in {load_s:.1f} s ({rows / load_s:,.0f} rows/s)")
        with psycopg.connect(url, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute("VACUUM ANALYZE readings")
            print(f"VACUUM ANALYZE readings: {time.perf_counter() - t0:.1f} s")
        print(f"load average: {load_average()}")
    if args.load_only:
        return
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await engine_session(conn)  # as the API's pool does (jit = off)
        more = [
            await psycopg.AsyncConnection.connect(url, autocommit=True)
            for _ in range(args.refresh_connections - 1)
        ]
        t0 = time.perf_counter()
        try:
            report = await rollups.refresh(conn, cfg, now=END - dt.timedelta(minutes=2), more=more)
        finally:
            for c in more:
                await c.close()
        for table in ROLLUP_TABLES:
            await conn.execute(f"ANALYZE {table}")
        refresh_s = time.perf_counter() - t0
        days = sum((b - a).total_seconds() for a, b in report.ranges.values()) / 86400
        print(
            f"rollups.refresh: {refresh_s:.1f} s for {report.minutes:,} minutes "
            f"({days:.1f} machine-days, {report.core_chunks} chunks counted by the pure core; "
            f"{refresh_s / max(days, 1e-9):.2f} s per machine-day) on "
            f"{args.refresh_connections} connections; load average: {load_average()}"
        )
        for table in ("readings", *ROLLUP_TABLES):
            cur = await conn.execute(f"SELECT count(*) FROM {table}")  # type: ignore[arg-type]
            print(f"{table} rows: {(await cur.fetchone())[0]:,}")  # type: ignore[index]
        engine = KpiEngine(cfg)
        settle_garbage_collector()  # as `shopfloor serve` does after start-up
        line = cfg.lines[0].id
        print(f"line {line}: {len(cfg.lines[0].machines)} machines; p50 / p95 of {args.runs} runs")
        cases: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        for label, span in (
            ("line KPIs, 1 shift", dt.timedelta(hours=8)),
            ("line KPIs, 1 day", dt.timedelta(days=1)),
            ("line KPIs, 7 days", dt.timedelta(days=7)),
            ("line KPIs, 30 days", dt.timedelta(days=min(30, args.days))),
        ):
            cases.append(
                (label, lambda span=span: engine.line(conn, line, now - span, now, now=now))
            )
        days30 = dt.timedelta(days=min(30, args.days))
        cases.append(
            (
                "line series 30 days, 1h",
                lambda: engine.series(conn, "line", line, END - days30, END, "1h", now=now),
            )
        )
        tag = (
            await (
                await conn.execute("SELECT id FROM tags WHERE machine_id = 'm00' AND name = 'temp'")
            ).fetchone()
        )[0]
        cases.append(
            (
                "tag series 1 day, 1 min avg",
                lambda: tag_series.bucketed(
                    conn,
                    tag_id=tag,
                    start=END - dt.timedelta(days=1),
                    end=END,
                    width=dt.timedelta(minutes=1),
                    agg="avg",
                ),
            )
        )
        cases.append(
            (
                "machine timeline 1 day",
                lambda: engine.timeline(conn, "m00", END - dt.timedelta(days=1), END, now=now),
            )
        )
        raw_engine = KpiEngine(cfg, use_rollups=False)
        scopes: list[tuple[Literal["line", "machine"], str]] = [("line", line), ("machine", "m00")]
        for kind, ident in scopes:
            for days in sorted({7, min(30, args.days)}):
                since = END - dt.timedelta(days=days)
                for source, eng in (("", engine), (" (raw)", raw_engine)):
                    call = partial(eng.downtime, conn, kind, ident, since, END, now=now)
                    cases.append((f"{kind} downtime {days} days{source}", call))
                rolled = await engine.downtime(conn, kind, ident, since, END, now=now)
                raw = await raw_engine.downtime(conn, kind, ident, since, END, now=now)
                problem = downtime_difference(rolled, raw)
                print(f"{kind} downtime {days} days: rollups == raw-only: {problem or 'yes'}")
        for label, fn in cases:
            p50, p95 = await timed(args.runs, fn)
            print(f"  {label:<30} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")


def downtime_difference(a: list[DowntimeRow], b: list[DowntimeRow]) -> str | None:
    """How two Pareto answers differ (durations to 1e-6, events exactly); None: they do not."""
    x = {(r.reason, r.time_class): r for r in a}
    y = {(r.reason, r.time_class): r for r in b}
    if x.keys() != y.keys():
        return f"rows {sorted(x.keys() ^ y.keys(), key=str)} in one answer only"
    for key, r in x.items():
        if abs(r.duration_s - y[key].duration_s) > 1e-6 or r.events != y[key].events:
            other = y[key]
            return f"{key}: {r.duration_s} s, {r.events} against {other.duration_s}, {other.events}"
    return None


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--counter-step-s", type=int, default=1)
    parser.add_argument("--analog-days", type=int, default=30)
    parser.add_argument("--load-connections", type=int, default=2)
    parser.add_argument("--refresh-connections", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="use an already loaded database")
    parser.add_argument("--load-only", action="store_true", help="stop after loading")
    parser.add_argument(
        "--keep", action="store_true", help="keep the private cluster running (prints its URL)"
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("SHOPFLOOR_DATABASE_URL"))
    args = parser.parse_args()
    with bench_database(args.database_url, "kpi", keep=args.keep, bulk_load=True) as url:
        asyncio.run(run(url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
