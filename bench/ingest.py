"""Ingest benchmark: the batch writer against a raw binary COPY; the collector's per-row cost.

    .venv/bin/python -m bench.ingest [--part writer|path|all] [--batches 40] [--batch-size 10000]
                                     [--polls 100] [--tags 1000] [--database-url URL]

Without --database-url (or SHOPFLOOR_DATABASE_URL) it starts a private TimescaleDB cluster in a
temp dir and removes it afterwards.

writer: batches of both kinds alternate, so drift (autovacuum, chunk creation, the other core's
load) hits both alike. Each batch is one transaction. Also measured: a full replay of
already-stored batches (the staging path that skips duplicates).

path: the collector's in-process cost per reading from `Reading` construction to COPY, the way
the Modbus phase of bench/e2e feeds it (one poll = one `Reading` per tag at one timestamp; rows
batched by `collector.batch_rows`): `Reading` construction, `TagRouter.rows`,
`DatabaseSink.write` (key -> id, BatchWriter screening, COPY, dirty marks, commit). CPU time of
this process (time.process_time, so the server's share on the other core is not counted) in µs
per reading, per stage; each scenario runs in a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
import yaml

from adapters.base import Quality, Reading
from bench.database import bench_database
from bench.e2e import fresh_database, modbus_config
from collector.dbsink import DatabaseSink
from collector.heartbeat import StateHeartbeat
from collector.routing import TagRouter
from collector.rows import Row
from config import DEMO_CONFIG, load_config, parse_config
from storage.migrate import migrate
from storage.plant_sync import sync_plant, tag_ids
from storage.writer import COPY_COLUMNS, COPY_TYPES, BatchWriter, ReadingRow

# A day ago: the collector refuses readings stamped more than max_reading_age_days ago.
EPOCH = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)


def make_batch(ids: Sequence[int], n: int, offset_s: float) -> list[ReadingRow]:
    """n rows over the tags, 10 ms apart per tag: like a busy line's polling."""
    k = len(ids)
    return [
        ReadingRow(
            EPOCH + dt.timedelta(seconds=offset_s + (i // k) * 0.01),
            ids[i % k],
            float(i % 1000) * 0.5,
            0,
            None,
        )
        for i in range(n)
    ]


async def raw_copy(conn: psycopg.AsyncConnection, rows: Sequence[ReadingRow]) -> None:
    async with conn.transaction(), conn.cursor() as cur:
        sql = f"COPY readings ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        async with cur.copy(sql) as cp:
            cp.set_types(COPY_TYPES)
            for row in rows:
                await cp.write_row(row)


async def run_writer(url: str, batches: int, batch_size: int) -> None:
    with psycopg.connect(url) as conn:
        migrate(conn)
        sync_plant(conn, load_config(DEMO_CONFIG))
        ids = sorted(i for found in tag_ids(conn).values() for i in found)
        conn.execute("TRUNCATE readings")
        conn.commit()
    writer = await BatchWriter.connect(url)
    raw = await psycopg.AsyncConnection.connect(url, autocommit=True)
    span = batch_size // len(ids) * 0.01 + 1  # seconds of data per batch
    t_writer: list[float] = []
    t_raw: list[float] = []
    written: list[list[ReadingRow]] = []
    for b in range(batches):
        w_rows = make_batch(ids, batch_size, offset_s=(2 * b) * span)
        r_rows = make_batch(ids, batch_size, offset_s=(2 * b + 1) * span)
        order = [("w", w_rows), ("r", r_rows)] if b % 2 == 0 else [("r", r_rows), ("w", w_rows)]
        for kind, rows in order:
            start = time.perf_counter()
            if kind == "w":
                result = await writer.write(rows)
                assert result.inserted == len(rows) and not result.rejected
                t_writer.append(time.perf_counter() - start)
                written.append(rows)
            else:
                await raw_copy(raw, rows)
                t_raw.append(time.perf_counter() - start)
        if (b + 1) % 10 == 0:
            print(f"  {b + 1}/{batches} batch pairs", file=sys.stderr)
    t_replay = []
    for rows in written[: max(1, batches // 4)]:
        start = time.perf_counter()
        result = await writer.write(rows)
        assert result.inserted == 0 and result.duplicates == len(rows)
        t_replay.append(time.perf_counter() - start)
    await writer.close()
    await raw.close()
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    assert total == 2 * batches * batch_size, total

    def rate(times: list[float]) -> float:
        return batch_size / statistics.median(times)

    w, r, rp = rate(t_writer), rate(t_raw), rate(t_replay)
    print(f"batch size {batch_size}, {batches} batches each, {len(ids)} tags")
    print(
        f"  raw binary COPY       {r:>10,.0f} rows/s (median batch {statistics.median(t_raw) * 1e3:.1f} ms)"
    )
    print(
        f"  BatchWriter.write     {w:>10,.0f} rows/s (median batch {statistics.median(t_writer) * 1e3:.1f} ms)"
    )
    print(f"  ratio writer / raw    {w / r:>10.2f}")
    print(f"  replay (all present)  {rp:>10,.0f} rows/s (staging + ON CONFLICT DO NOTHING)")


# -- the collector path ---------------------------------------------------------------------


def path_config(tags: int, kpi_every: int, spool_dir: Path) -> str:
    """The e2e Modbus plant (uint16 measurement tags, 25 per machine); with `kpi_every`, every
    n-th tag is a good counter instead, so the rollup dirty marks have work to do."""
    cfg = modbus_config(1502, tags, 0.01, spool_dir)
    if kpi_every:
        for a, tag in enumerate(cfg["sources"][0]["tags"]):
            if a % kpi_every == 0:
                tag["signal"] = "good_count"
    return yaml.safe_dump(cfg)


async def run_path(url: str, polls: int, tags: int, kpi_every: int) -> dict[str, float]:
    """µs of this process's CPU per reading for each stage; `wall` is the whole loop."""
    with tempfile.TemporaryDirectory() as spool:
        cfg = parse_config(path_config(tags, kpi_every, Path(spool)))
    source = cfg.sources[0]
    name = source.name
    addresses = [t.reading_address for t in source.tags]
    router = TagRouter(cfg, StateHeartbeat(cfg.settings.kpi.heartbeat_s))
    sink = DatabaseSink(cfg, url)
    if not await sink.connect():
        raise SystemExit(f"cannot connect to {url}: {sink.last_error}")
    batch_rows = cfg.settings.collector.batch_rows
    good = Quality.GOOD
    cpu = {"reading": 0.0, "route": 0.0, "sink": 0.0}
    pending: list[Row] = []
    clock = time.process_time
    wall = time.perf_counter()
    for p in range(polls):
        ts = EPOCH + dt.timedelta(seconds=p * 0.01)
        t0 = clock()
        readings = [
            Reading(name, address, ts, float((p + a) % 65536), good, None)
            for a, address in enumerate(addresses)
        ]
        t1 = clock()
        pending.extend(router.rows(readings))
        t2 = clock()
        cpu["reading"] += t1 - t0
        cpu["route"] += t2 - t1
        while len(pending) >= batch_rows or (p == polls - 1 and pending):
            batch, pending = pending[:batch_rows], pending[batch_rows:]
            t0 = clock()
            result = await sink.write(batch)
            cpu["sink"] += clock() - t0
            assert result.inserted == len(batch) and not result.rejected, result
    wall = time.perf_counter() - wall
    await sink.close()
    n = polls * tags
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
        marks = conn.execute("SELECT count(*) FROM rollup_state").fetchone()
    assert stored is not None and stored[0] == n, stored
    assert marks is not None and (marks[0] > 0) == bool(kpi_every), marks
    out = {k: v / n * 1e6 for k, v in cpu.items()}
    out["total"] = sum(out.values())
    out["wall"] = wall / n * 1e6
    return out


def report_path(server_url: str, polls: int, tags: int) -> None:
    print(f"collector path: {polls} polls of {tags} tags, CPU µs per reading (this process)")
    print(f"  {'plant':<34} {'Reading':>8} {'route':>8} {'sink':>8} {'total':>8} {'wall':>8}")
    for label, kpi_every in (
        ("measurements only (e2e modbus)", 0),
        ("1 good counter in 25 tags", 25),
    ):
        with fresh_database(server_url) as url:
            f = asyncio.run(run_path(url, polls, tags, kpi_every))
        print(
            f"  {label:<34} {f['reading']:>8.2f} {f['route']:>8.2f} {f['sink']:>8.2f} "
            f"{f['total']:>8.2f} {f['wall']:>8.2f}"
        )


def run_all(url: str, args: argparse.Namespace) -> None:
    if args.part in ("writer", "all"):
        asyncio.run(run_writer(url, args.batches, args.batch_size))
    if args.part in ("path", "all"):
        report_path(url, args.polls, args.tags)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("writer", "path", "all"), default="all")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=100, help="path: polls of every tag")
    parser.add_argument("--tags", type=int, default=1000, help="path: Modbus tags")
    parser.add_argument("--database-url", default=os.environ.get("SHOPFLOOR_DATABASE_URL"))
    args = parser.parse_args()
    with bench_database(args.database_url, "ingest") as url:
        run_all(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
