"""Ingest benchmark: the batch writer against a raw binary COPY of the same rows, same table.

    .venv/bin/python -m bench.ingest [--batches 40] [--batch-size 10000] [--database-url URL]

Without --database-url (or SHOPFLOOR_DATABASE_URL) it starts a private TimescaleDB cluster in a
temp dir and removes it afterwards. Batches of both kinds alternate, so drift (autovacuum, chunk
creation, the other core's load) hits both alike. Each batch is one transaction. Also measured:
a full replay of already-stored batches (the staging path that skips duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence

import psycopg

from collector.mosquitto import free_port
from config import DEMO_CONFIG, load_config
from storage.cluster import LocalCluster, world_traversable_tempdir
from storage.migrate import migrate
from storage.plant_sync import sync_plant, tag_ids
from storage.writer import COPY_COLUMNS, COPY_TYPES, BatchWriter, ReadingRow

EPOCH = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


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


async def run(url: str, batches: int, batch_size: int) -> None:
    with psycopg.connect(url) as conn:
        migrate(conn)
        sync_plant(conn, load_config(DEMO_CONFIG))
        ids = sorted(tag_ids(conn).values())
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("SHOPFLOOR_DATABASE_URL"))
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(run(args.database_url, args.batches, args.batch_size))
        return 0
    base = world_traversable_tempdir("shopfloor-bench-")
    cluster = LocalCluster(base=base / "db", port=free_port())
    try:
        cluster.start()
        asyncio.run(run(cluster.url, args.batches, args.batch_size))
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
