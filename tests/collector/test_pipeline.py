"""Pipeline against a real database that really goes away: spool, replay, exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest

from collector.dbsink import DatabaseSink
from collector.pipeline import Pipeline
from collector.rows import Rejected, Row
from collector.spool import Spool
from config import parse_config
from config.settings import CollectorSettings
from localenv.cluster import LocalCluster
from tests.collector.test_filters import CONFIG
from tests.services import eventually

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


def rows(n: int, start: int = 0, key: str = "m.temp") -> list[Row]:
    return [
        (T0 + dt.timedelta(seconds=start + i), key, float(start + i), 0, None) for i in range(n)
    ]


def stored(url: str) -> list[tuple[dt.datetime, str, float]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT r.time, t.machine_id || '.' || t.name, r.value FROM readings r "
            "JOIN tags t ON t.id = r.tag_id ORDER BY 2, 1"
        ).fetchall()


@pytest.fixture
def cluster(own_cluster: LocalCluster) -> LocalCluster:
    own_cluster.start()  # a test before may have left it stopped
    with psycopg.connect(own_cluster.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        name = own_cluster.url.rsplit("/", 1)[1]
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return own_cluster


async def test_outage_spools_then_replays_every_row_exactly_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    settings = CollectorSettings(batch_rows=100, batch_age_ms=50)
    db = DatabaseSink(parse_config(CONFIG), cluster.url)
    spool = Spool(tmp_path, max_bytes=50_000_000)
    pipe = Pipeline(settings, db, spool)
    writer = asyncio.create_task(pipe.run())
    try:
        await pipe.submit(rows(250), durable=True)  # three batches of at most 100
        assert len(stored(cluster.url)) == 250 and pipe.batches == 3

        await asyncio.to_thread(cluster.stop, mode="fast")
        await pipe.submit(rows(300, start=1000), durable=True)  # returns: durable in the spool
        await pipe.submit(rows(10, start=5000, key="m.state"))
        await eventually(lambda: pipe.queued == 0, what="queue drained into the spool")
        assert spool.stats().rows == 310 and not db.up
        assert db.outages == 1 and db.last_error  # one outage, reason kept

        await asyncio.to_thread(cluster.start)
        await eventually(lambda: len(spool) == 0, within=60, what="spool replayed")
    finally:
        await pipe.close()
        await writer
        await db.close()
        pipe.shutdown()
    expected = sorted(
        [(t, k, v) for t, k, v, _, _ in rows(250) + rows(300, start=1000)]
        + [(t, k, v) for t, k, v, _, _ in rows(10, start=5000, key="m.state")],
        key=lambda r: (r[1], r[0]),
    )
    assert stored(cluster.url) == expected
    assert pipe.replayed_rows == 310 and db.duplicates == 0


async def test_replaying_a_batch_already_committed_never_duplicates(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """A crash between the replay's commit and the spool delete: the batch comes again."""
    db = DatabaseSink(parse_config(CONFIG), cluster.url)
    spool = Spool(tmp_path, max_bytes=50_000_000)
    await db.write(rows(40))
    spool.append(rows(60))  # rows 0..39 are stored already, 40..59 are not
    spool.append(rows(5, start=10_000, key="m.gone"))  # a tag no longer configured
    pipe = Pipeline(CollectorSettings(batch_age_ms=10), db, spool)
    writer = asyncio.create_task(pipe.run())
    try:
        await eventually(lambda: len(spool) == 0, what="spool replayed")
    finally:
        await pipe.close()
        await writer
        await db.close()
        pipe.shutdown()
    assert [r[2] for r in stored(cluster.url)] == [float(i) for i in range(60)]
    assert (db.duplicates, db.unknown_tag_rows) == (40, 5)
    with psycopg.connect(cluster.url) as conn:
        reasons = conn.execute("SELECT DISTINCT reason FROM rejected_readings").fetchall()
    assert reasons == [("tag 'm.gone' is not configured",)]


async def test_full_spool_with_block_policy_applies_backpressure(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Database away and the spool at its budget: submit blocks instead of losing rows, and at
    once, not when the queue is full: what a crash could lose stays the held batch (and what
    was admitted while it was tried), never `queue_rows` of readings (issue 11, item 6)."""
    await asyncio.to_thread(cluster.stop, mode="fast")
    settings = CollectorSettings(batch_rows=50, batch_age_ms=10, queue_rows=1000)
    db = DatabaseSink(parse_config(CONFIG), cluster.url)
    spool = Spool(tmp_path, max_bytes=3000, on_full="block")
    pipe = Pipeline(settings, db, spool)
    writer = asyncio.create_task(pipe.run())
    submitted = 0
    try:

        async def producer() -> None:
            nonlocal submitted
            for k in range(40):  # a poller: 50 readings every 20 ms
                await pipe.submit(rows(50, start=50 * k))
                submitted += 50
                await asyncio.sleep(0.02)

        task = asyncio.create_task(producer())
        await eventually(lambda: spool.stats().full, what="spool at its budget")
        await eventually(lambda: pipe.homeless, what="a batch without a home")
        held = pipe.queued
        await asyncio.sleep(1.5)
        assert not task.done() and submitted < 2000  # held back, not dropped
        assert pipe.queued == held <= 2 * settings.batch_rows  # nothing more was taken
        await asyncio.to_thread(cluster.start)
        await asyncio.wait_for(task, 120)
        await eventually(lambda: pipe.queued == 0 and len(spool) == 0, within=60, what="drained")
        assert not pipe.homeless
    finally:
        await pipe.close()
        await writer
        await db.close()
        pipe.shutdown()
    assert len(stored(cluster.url)) == 2000
    assert spool.stats().dropped_rows == 0 and pipe.lost_rows == 0


async def test_sink_stores_known_keys_and_keeps_rows_of_unknown_tags_apart(
    database_url: str,
) -> None:
    """One batch mixing configured keys with keys the database does not know (spooled before
    a config change): the known rows are stored, each unknown one lands in rejected_readings."""
    db = DatabaseSink(parse_config(CONFIG), database_url)
    batch = rows(3)
    batch.insert(1, (T0, "m.gone", 1.0, 0, None))
    batch.append((T0 + dt.timedelta(seconds=9), "m.state", 2.0, 0, None))
    batch.append((T0 + dt.timedelta(seconds=10), "x.other", None, 2, "text"))
    try:
        result = await db.write(batch)
    finally:
        await db.close()
    assert (result.inserted, db.rows_written, db.unknown_tag_rows, db.rejected) == (4, 4, 2, 0)
    assert stored(database_url) == [
        (T0 + dt.timedelta(seconds=9), "m.state", 2.0),
        (T0, "m.temp", 0.0),
        (T0 + dt.timedelta(seconds=1), "m.temp", 1.0),
        (T0 + dt.timedelta(seconds=2), "m.temp", 2.0),
    ]
    with psycopg.connect(database_url) as conn:
        kept = conn.execute("SELECT time, reason FROM rejected_readings ORDER BY id").fetchall()
    assert kept == [
        (T0, "tag 'm.gone' is not configured"),
        (T0 + dt.timedelta(seconds=10), "tag 'x.other' is not configured"),
    ]


async def test_pending_rows_are_written_in_batches_of_batch_rows_in_order(
    database_url: str, tmp_path: Path
) -> None:
    db = DatabaseSink(parse_config(CONFIG), database_url)
    pipe = Pipeline(
        CollectorSettings(batch_rows=7, batch_age_ms=10), db, Spool(tmp_path, max_bytes=10**6)
    )
    writer = asyncio.create_task(pipe.run())
    try:
        await pipe.submit(rows(20), durable=True)
        await pipe.submit(rows(7, start=20), durable=True)
    finally:
        await pipe.close()
        await writer
        await db.close()
        pipe.shutdown()
    assert (pipe.batches, db.rows_written, pipe.queued) == (4, 27, 0)
    assert [r[2] for r in stored(database_url)] == [float(i) for i in range(27)]


class RecordingSink(DatabaseSink):
    """The real sink, noting the values of each batch in the order they reach the database."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.order: list[float] = []

    async def write(self, rows: Sequence[Row], rejected: Sequence[Rejected] = ()) -> object:  # type: ignore[override]
        self.order.extend(r[2] for r in rows)  # type: ignore[misc]
        return await super().write(rows, rejected)


async def test_concurrent_submits_enter_the_queue_in_call_order(
    database_url: str, tmp_path: Path
) -> None:
    db = RecordingSink(parse_config(CONFIG), database_url)
    pipe = Pipeline(CollectorSettings(queue_rows=10), db, Spool(tmp_path, max_bytes=10**6))
    await pipe.submit(rows(8))  # 8 of 10 held; the writer is not running yet
    first = asyncio.create_task(pipe.submit(rows(8, start=100)))  # no room: waits
    second = asyncio.create_task(pipe.submit(rows(1, start=200)))  # would fit, but came later
    await asyncio.sleep(0.05)
    writer = asyncio.create_task(pipe.run())
    try:
        await asyncio.gather(first, second)
    finally:
        await pipe.close()
        await writer
        await db.close()
        pipe.shutdown()
    expected = [float(i) for i in [*range(8), *range(100, 108), 200]]
    assert db.order == expected
    assert sorted(r[2] for r in stored(database_url)) == expected
