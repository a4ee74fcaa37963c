"""Retention drops whole old chunks of readings and rollups, and old rejected readings."""

from __future__ import annotations

import datetime as dt

import psycopg

from config.settings import RetentionSettings
from storage.retention import enforce
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
