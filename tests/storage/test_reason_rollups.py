"""Stop time by reason per minute and hour (storage.reason_rollups, migration 007): the rows of a
timeline, what the refresh writes (also after late data: equal to a rebuild from scratch), the
migration that makes older rollups be recomputed, and retention."""

from __future__ import annotations

import datetime as dt

import psycopg

from config.settings import RetentionSettings
from kpi import Interval, TimeClass
from storage.reason_rollups import minute_rows
from storage.retention import enforce
from storage.rollups import refresh
from tests.kpi.builders import heartbeat
from tests.storage.conftest import at, plant
from tests.storage.test_rollups import write_story

RUN, IDLE, DOWN = 1, 2, 3  # the storage plant's state map (0 is planned_stop)


def test_minute_rows_of_a_timeline() -> None:
    """Microseconds, starts and the carried key per minute and key; only stop classes."""
    down = Interval(at(-2), at(1.5), TimeClass.DOWN, reason=101)  # began before the range
    intervals = [
        down,
        Interval(at(1.5), at(2 + 10 / 60), TimeClass.RUNNING),
        Interval(at(2 + 10 / 60), at(2 + 40 / 60), TimeClass.IDLE, short_stop=True),
        Interval(at(2 + 40 / 60), at(3), TimeClass.UNKNOWN),
        Interval(at(3), at(4), TimeClass.PLANNED_STOP),  # starts on the minute
        Interval(at(4), at(4.5), TimeClass.DOWN, short_stop=True),
        Interval(at(4.5), at(5), TimeClass.IDLE, short_stop=True),  # same key, next interval
        Interval(at(5), at(9), TimeClass.RUNNING),
    ]
    assert minute_rows(intervals, at(0), at(5)) == [
        (at(0), 101, "down", 60_000_000, 0, True),
        (at(1), 101, "down", 30_000_000, 0, True),
        (at(2), None, "short_stop", 30_000_000, 1, False),
        (at(3), None, "planned_stop", 60_000_000, 1, False),
        (at(4), None, "short_stop", 60_000_000, 2, False),
    ]
    assert minute_rows(intervals, at(5), at(8)) == []


def story() -> dict[str, list[tuple[dt.datetime, float | None]]]:
    changes = [
        (at(-10), RUN),
        (at(10 + 17 / 60), DOWN),  # 80 s: a short stop
        (at(11 + 37 / 60), RUN),
        (at(20 + 5 / 60), DOWN),  # a long down, its reason entered 1 s later
        (at(87 + 40 / 60), RUN),  # across the 07:00 hour edge
        (at(95), IDLE),  # 5 min, no reason
        (at(100), RUN),
    ]
    return {
        "state": heartbeat(changes, until=at(120)),
        "reason": [(at(20 + 6 / 60), 101), (at(87 + 41 / 60), 0)],
    }


MINUTES = (
    "SELECT minute, reason, time_class, duration_us / 1e6, starts, carried FROM downtime_minutes "
    "WHERE machine_id = 'm1' ORDER BY 1, 2, 3"
)
HOURS = (
    "SELECT hour, reason, time_class, duration_us, starts FROM downtime_hours "
    "WHERE machine_id = 'm1' ORDER BY 1, 2, 3"
)
HOURS_OF_MINUTES = (
    "SELECT date_trunc('hour', minute, 'UTC'), reason, time_class, sum(duration_us)::bigint, "
    "sum(starts)::int "
    "FROM downtime_minutes WHERE machine_id = 'm1' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)


async def rows(db: psycopg.AsyncConnection, sql: str) -> list[tuple]:
    cur = await db.execute(sql)
    return await cur.fetchall()


async def test_refresh_writes_stop_time_by_reason(conn: psycopg.AsyncConnection) -> None:
    cfg = plant()
    await write_story(conn, story())
    await refresh(conn, cfg, now=at(130))
    minutes = await rows(conn, MINUTES)
    # the long down: 06:20:05 - 07:27:40, reason 101, one start, carried in every later minute
    down = [r for r in minutes if r[1:3] == (101, "down")]
    assert (down[0][0], down[0][4], down[0][5]) == (at(20), 1, False)
    assert [r[0] for r in down] == [at(m) for m in range(20, 88)]
    assert all(r[4] == 0 and r[5] for r in down[1:])
    assert sum(r[3] for r in down) == 4055.0
    short = [r for r in minutes if r[2] == "short_stop"]
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in short] == [
        (at(10), None, 43.0, 1, False),  # 06:10:17 - 06:11:37
        (at(11), None, 37.0, 0, True),
    ]
    idle = [r for r in minutes if r[1:3] == (None, "idle")]
    assert [(r[0], r[3], r[4], r[5]) for r in idle] == [
        (at(95), 60.0, 1, False),
        *((at(m), 60.0, 0, True) for m in range(96, 100)),
    ]
    assert await rows(conn, HOURS) == await rows(conn, HOURS_OF_MINUTES)

    # Running it again changes nothing; late readings, then a refresh, give what a rebuild
    # from scratch gives.
    await refresh(conn, cfg, now=at(130))
    assert await rows(conn, MINUTES) == minutes
    late = {"state": heartbeat([(at(50), RUN)], until=at(50.5)), "reason": [(at(51), 0)]}
    await write_story(conn, late)  # 06:50 - 06:50:30 running: the long down is two now
    await refresh(conn, cfg, now=at(130))
    incremental = (await rows(conn, MINUTES), await rows(conn, HOURS))
    assert [r[0] for r in incremental[0] if r[1:3] == (101, "down") and r[4]] == [at(20), at(50)]
    await conn.execute("UPDATE rollup_state SET computed_until = NULL")
    await refresh(conn, cfg, now=at(130))
    assert (await rows(conn, MINUTES), await rows(conn, HOURS)) == incremental


async def test_retention_drops_old_stop_rows(conn: psycopg.AsyncConnection) -> None:
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    old, recent = now - dt.timedelta(days=800), now - dt.timedelta(days=1)
    for t in (old, recent):
        await conn.execute(
            "INSERT INTO downtime_minutes VALUES ('m1', %s, 101, 'down', 60, 1, false)",
            (t.replace(second=0, microsecond=0),),
        )
        await conn.execute(
            "INSERT INTO downtime_hours VALUES ('m1', %s, 101, 'down', 60, 1)",
            (t.replace(minute=0, second=0, microsecond=0),),
        )
    report = await enforce(conn, RetentionSettings(raw_days=90, rollup_days=730), now=now)
    assert [len(report.dropped_chunks[t]) for t in ("downtime_minutes", "downtime_hours")] == [1, 1]
    for sql in ("SELECT minute FROM downtime_minutes", "SELECT hour FROM downtime_hours"):
        assert [r[0].date() for r in await rows(conn, sql)] == [recent.date()]
