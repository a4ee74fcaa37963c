"""Retention drops whole old chunks of readings and rollups, and old rejected readings."""

from __future__ import annotations

import datetime as dt

import psycopg

from config.settings import RetentionSettings
from storage.retention import RETENTION_LOCK, elected, enforce
from tests.storage.conftest import tag_id

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


async def times(db: psycopg.AsyncConnection, sql: str) -> list[dt.datetime]:
    cur = await db.execute(sql)
    return [r[0] for r in await cur.fetchall()]


async def test_old_chunks_are_dropped_recent_ones_kept(
    conn: psycopg.AsyncConnection,
) -> None:
    state = await tag_id(conn, "m1", "state")
    raw_times = [ago(200), ago(91.5), ago(89), ago(1)]
    for t in raw_times:
        await conn.execute(
            "INSERT INTO readings (time, tag_id, value) VALUES (%s, %s, 1)", (t, state)
        )
    minute_times = [ago(800), ago(700), ago(1)]
    for t in minute_times:
        await conn.execute(
            "INSERT INTO machine_minutes (machine_id, minute) VALUES ('m1', %s)",
            (t.replace(second=0, microsecond=0),),
        )
    for t in (ago(900), ago(5)):
        await conn.execute(
            "INSERT INTO machine_hours (machine_id, hour) VALUES ('m1', %s)",
            (t.replace(minute=0, second=0, microsecond=0),),
        )
    for t in (ago(95), ago(10)):
        await conn.execute(
            "INSERT INTO rejected_readings (received_at, row_repr, reason) VALUES (%s, 'x', 'y')",
            (t,),
        )

    report = await enforce(conn, RetentionSettings(raw_days=90, rollup_days=730), now=NOW)

    # readings: 1-day chunks; 200 and 91.5 days old are whole chunks before the cutoff
    assert await times(conn, "SELECT time FROM readings ORDER BY time") == [ago(89), ago(1)]
    assert len(report.dropped_chunks["readings"]) == 2
    # minutes: 7-day chunks, hours: 30-day chunks
    assert await times(conn, "SELECT minute FROM machine_minutes ORDER BY minute") == [
        ago(700).replace(second=0, microsecond=0),
        ago(1).replace(second=0, microsecond=0),
    ]
    assert await times(conn, "SELECT hour FROM machine_hours") == [
        ago(5).replace(minute=0, second=0, microsecond=0)
    ]
    assert [len(report.dropped_chunks[t]) for t in ("machine_minutes", "machine_hours")] == [1, 1]
    assert await times(conn, "SELECT received_at FROM rejected_readings") == [ago(10)]
    assert report.rejected_deleted == 1

    # Run again: nothing left to drop.
    again = await enforce(conn, RetentionSettings(raw_days=90, rollup_days=730), now=NOW)
    tables = ("readings", "machine_minutes", "machine_hours", "downtime_minutes", "downtime_hours")
    assert again.dropped_chunks == {table: [] for table in tables}
    assert again.rejected_deleted == 0


async def test_none_keeps_forever(conn: psycopg.AsyncConnection) -> None:
    state = await tag_id(conn, "m1", "state")
    await conn.execute(
        "INSERT INTO readings (time, tag_id, value) VALUES (%s, %s, 1)", (ago(5000), state)
    )
    await conn.execute(
        "INSERT INTO machine_minutes (machine_id, minute) VALUES ('m1', %s)", (ago(5000),)
    )
    report = await enforce(conn, RetentionSettings(raw_days=None, rollup_days=None), now=NOW)
    assert report.dropped_chunks == {} and report.rejected_deleted == 0
    assert await times(conn, "SELECT time FROM readings") == [ago(5000)]
    assert await times(conn, "SELECT minute FROM machine_minutes") == [ago(5000)]


async def test_several_collectors_run_it_once_per_interval_never_together(
    conn: psycopg.AsyncConnection, plant_url: str
) -> None:
    """Issue 17: on a database several edges share, whoever finds the lock free and the last
    run an interval old runs it; `wait` (shopfloor maintain) waits for the lock and runs."""
    settings = RetentionSettings(raw_days=90, rollup_days=730, interval_s=3600)
    state = await tag_id(conn, "m1", "state")
    await conn.execute(
        "INSERT INTO readings (time, tag_id, value) VALUES (%s, %s, 1)", (ago(200), state)
    )
    async with await psycopg.AsyncConnection.connect(plant_url, autocommit=True) as other:
        # Another run holds the lock: skipped, nothing dropped.
        await other.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK,))
        held = await elected(conn, settings, edge="line1-pc", now=NOW)
        assert (held.report, held.why) == (None, "another retention run holds the lock")
        assert await times(conn, "SELECT time FROM readings") == [ago(200)]
        await other.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))

        first = await elected(conn, settings, edge="line1-pc", now=NOW)
        assert first.report is not None and len(first.report.dropped_chunks["readings"]) == 1
        # Another edge within the interval: skipped, naming who ran it.
        soon = await elected(other, settings, edge="line2-pc", now=NOW + dt.timedelta(minutes=59))
        assert (soon.report, soon.why) == (None, f"edge 'line1-pc' ran it at {NOW.isoformat()}")
        later = await elected(other, settings, edge="line2-pc", now=NOW + dt.timedelta(hours=1))
        assert later.report is not None
        forced = await elected(
            other, settings, edge="central", now=NOW + dt.timedelta(hours=1), wait=True
        )
        assert forced.report is not None
    cur = await conn.execute("SELECT job, edge, finished_at IS NOT NULL FROM maintenance_runs")
    assert await cur.fetchall() == [("retention", "central", True)]
    # The lock is free again after each run.
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK,))
    assert await cur.fetchone() == (True,)
