"""Rollups against the raw timeline: Σ minute rows == the raw computation, under late data."""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg
import pytest

from config import parse_config
from kpi import CountStreams, Interval, context_margin, state_seconds
from storage import rollups
from storage.rollups import FLAG_COLUMNS, VALUE_COLUMNS, covered_until, refresh
from storage.samples import fetch_raw_many, machine_tags, reason_categories, timeline_and_counts
from storage.writer import BatchWriter, ReadingRow
from tests.kpi.builders import heartbeat
from tests.storage.conftest import PLANT, at, plant, tag_id

RUN, IDLE, DOWN = 1, 2, 3
NOW0 = at(59 + 10 / 60)  # 06:59:10, the down from 06:58 is 70 s old: short so far
NOW1 = at(60.5)  # 07:00:30: that down is 150 s old, long


def story() -> dict[str, list[tuple[dt.datetime, float | None]]]:
    """States (30 s heartbeat), reasons, a wrapping/resetting/glitching counter, a delta one."""
    changes = [
        (at(-10), RUN),
        (at(10 + 17 / 60), DOWN),  # 80 s: short stop
        (at(11 + 37 / 60), RUN),
        (at(20 + 5 / 60), DOWN),  # 455 s: long down
        (at(27 + 40 / 60), RUN),
    ]
    states = heartbeat(changes, until=at(35))  # last sample 06:34:40
    # silence 06:34:40 .. 06:38:20 (> max_gap_s): unknown from 06:35:40
    states += heartbeat(
        [(at(38 + 20 / 60), IDLE), (at(39 + 50 / 60), RUN), (at(58), DOWN)], until=NOW1
    )
    reasons = [(at(10 + 17.5 / 60), 101), (at(11 + 40 / 60), 0), (at(20 + 6 / 60), 101)]
    reasons += [(at(27 + 41 / 60), 0), (at(58 + 1 / 60), 101)]
    good: list[tuple[dt.datetime, float | None]] = []
    value = 950
    t = at(-10)
    while t < NOW1:
        good.append((t, float(value)))
        t += dt.timedelta(seconds=10)
        value = (value + 5) % 1000  # wraps at 05:51:40 and 06:25:00
        if t == at(45):
            value = 3  # reset
    good = [(t, v + 5000 if t == at(50) else v) for t, v in good]  # a glitch
    reject = [(at(m + 0.5), 1.0) for m in range(-10, 60)]
    return {"state": states, "reason": reasons, "good": good, "reject": reject}


async def write_story(db: psycopg.AsyncConnection, data: dict) -> None:
    writer = BatchWriter(db)
    await writer.refresh_tags()
    rows = [
        ReadingRow(t, await tag_id(db, "m1", name), None if v is None else float(v))
        for name, samples in data.items()
        for t, v in samples
    ]
    for i in range(0, len(rows), 500):  # several batches, like the collector
        result = await writer.write(rows[i : i + 500])
        assert result.inserted == len(rows[i : i + 500]) and not result.rejected


async def raw_timeline(
    db: psycopg.AsyncConnection, now: dt.datetime
) -> tuple[list[Interval], CountStreams]:
    """The whole story in one piece: what rollups must agree with."""
    cfg = plant()
    _, machine = cfg.machines()["m1"]
    kpi = cfg.settings.kpi
    tags = (await machine_tags(db))["m1"]
    (raw,) = await fetch_raw_many(db, [(tags, at(-60) - context_margin(kpi), now)])
    return timeline_and_counts(
        raw, machine, reason_categories(cfg, machine), kpi, until=now, now=now
    )


async def minute_table(db: psycopg.AsyncConnection, table: str = "machine_minutes") -> dict:
    key = "minute" if table == "machine_minutes" else "hour"
    cur = await db.execute(
        f"SELECT {key}, {', '.join(VALUE_COLUMNS)} FROM {table} WHERE machine_id = 'm1' "
        f"ORDER BY {key}"
    )
    return {r[0]: dict(zip(VALUE_COLUMNS, r[1:], strict=True)) for r in await cur.fetchall()}


def expected_row(intervals: list[Interval], streams: CountStreams, m: dt.datetime) -> dict:
    end = m + dt.timedelta(minutes=1)
    secs = dataclasses.asdict(state_seconds(intervals, [(m, end)]))
    counts = streams.window(m, end)
    out = secs | {c: getattr(counts, c) for c in VALUE_COLUMNS if hasattr(counts, c)}
    return out | {c: counts.flags.get(c, 0) for c in FLAG_COLUMNS}


def assert_rows_match_raw(rows: dict, intervals: list[Interval], streams: CountStreams) -> None:
    for m, row in rows.items():
        want = expected_row(intervals, streams, m)
        for col in VALUE_COLUMNS:
            if isinstance(want[col], float):
                assert row[col] == pytest.approx(want[col], abs=1e-9), (m, col)
            else:
                assert row[col] == want[col], (m, col)


def total(rows: dict, col: str, start: dt.datetime, end: dt.datetime) -> float:
    return sum(r[col] for m, r in rows.items() if start <= m < end)


async def covered(db: psycopg.AsyncConnection) -> dt.datetime | None:
    return (await covered_until(db, ["m1"], kpi=plant().settings.kpi))["m1"]


@pytest.mark.parametrize("chunk_minutes", [24 * 60, 7])  # a catch-up in chunks: same rows
async def test_rollups_equal_raw_timeline_under_late_data(
    conn: psycopg.AsyncConnection,
    chunk_minutes: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rollups, "CHUNK", dt.timedelta(minutes=chunk_minutes))
    cfg = plant()
    data = story()
    late_idle = [(at(36 + 40 / 60 + k / 2), float(IDLE)) for k in range(4)]  # 06:36:40..06:38:10
    await write_story(conn, data)
    assert await covered(conn) is None  # nothing computed yet

    # First run starts at the first reading; m2 has no readings: no rows, no error.
    report = await refresh(conn, cfg, now=NOW0)
    assert report.ranges == {"m1": (at(-10), at(59))}
    assert await covered(conn) == at(56)  # 06:59 - (120 s + 60 s)
    rows = await minute_table(conn)
    assert len(rows) == 69
    intervals, streams = await raw_timeline(conn, NOW0)
    assert_rows_match_raw(rows, intervals, streams)
    assert rows[at(58)]["short_stop_s"] == 60.0  # the down in progress is short so far

    # Time passes without data: the margin before computed_until is redone.
    report = await refresh(conn, cfg, now=NOW1)
    assert report.ranges == {"m1": (at(56), at(60))}
    rows = await minute_table(conn)
    intervals, streams = await raw_timeline(conn, NOW1)
    assert_rows_match_raw(rows, intervals, streams)
    hour = (at(0), at(60))
    assert total(rows, "down_s", *hour) == 455 + 120
    assert total(rows, "short_stop_s", *hour) == pytest.approx(80 + 90, abs=1e-9)
    assert total(rows, "unknown_s", *hour) == pytest.approx(160, abs=1e-9)
    assert total(rows, "running_s", *hour) == pytest.approx(3600 - 575 - 170 - 160, abs=1e-9)
    assert total(rows, "down_starts", *hour) == 2
    assert all(r["total"] is None and r["ideal_total_s"] is None for r in rows.values())
    assert total(rows, "reject", *hour) == 60
    assert [total(rows, f, at(-10), at(60)) for f in ("counter_wraps", "counter_resets")] == [2, 1]
    assert total(rows, "counter_glitches", at(-10), at(60)) == 1
    assert await covered(conn) == at(57)

    # Idempotent: the same refresh again changes nothing.
    hours = await minute_table(conn, "machine_hours")
    await refresh(conn, cfg, now=NOW1)
    assert await minute_table(conn) == rows
    assert await minute_table(conn, "machine_hours") == hours

    # Hours are the sums of their minutes.
    assert sorted(hours) == [at(-60), at(0)]
    for h, hour_row in hours.items():
        for col in VALUE_COLUMNS:
            want = [r[col] for m, r in rows.items() if h <= m < h + dt.timedelta(hours=1)]
            if None in want:
                assert hour_row[col] is None and set(want) == {None}, (h, col)
            else:
                assert hour_row[col] == pytest.approx(sum(want), abs=1e-9), (h, col)

    # A measurement reading, however old, changes no rollup: no dirty mark.
    writer = BatchWriter(conn)
    await writer.refresh_tags()
    await writer.write([ReadingRow(at(1), await tag_id(conn, "m1", "temp"), 20.0)])
    assert await covered(conn) == at(57)

    # Late readings: the 06:38:20 idle (90 s, short) really began 06:36:40 (190 s, long).
    await write_story(conn, {"state": late_idle})
    assert await covered(conn) == at(33)  # floor(06:36:40 - 180 s)
    report = await refresh(conn, cfg, now=NOW1)
    assert report.ranges == {"m1": (at(33), at(60))}
    assert await covered(conn) == at(57)
    rows = await minute_table(conn)
    intervals, streams = await raw_timeline(conn, NOW1)
    assert_rows_match_raw(rows, intervals, streams)
    assert rows[at(38)]["idle_s"] == 60.0 and rows[at(38)]["short_stop_s"] == 0.0
    assert total(rows, "idle_s", *hour) == pytest.approx(190, abs=1e-9)
    assert total(rows, "short_stop_s", *hour) == pytest.approx(80, abs=1e-9)
    assert total(rows, "unknown_s", *hour) == pytest.approx(60, abs=1e-9)
    new_hours = await minute_table(conn, "machine_hours")
    assert new_hours[at(0)]["idle_s"] == pytest.approx(190, abs=1e-9)
    assert new_hours[at(-60)] == hours[at(-60)]


async def test_refresh_needs_autocommit(plant_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(plant_url) as c:
        with pytest.raises(ValueError, match="autocommit"):
            await refresh(c, plant(), now=NOW1)


async def test_catch_up_starts_no_earlier_than_the_raw_retention_horizon(
    conn: psycopg.AsyncConnection,
) -> None:
    """issue 11, item 3: a reading stamped 1970 (a PLC whose clock reset), stored by a collector
    of before, made the refresh rebuild minutes from 1970 (~11 minutes and ~29M rows per
    machine). The refresh starts at the raw retention horizon: older raw data is dropped anyway."""
    await write_story(conn, {"state": [(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), RUN)]})
    await write_story(conn, {"state": heartbeat([(at(0), RUN)], until=at(5))})
    cfg = parse_config(PLANT + "settings: {retention: {raw_days: 2}}", env={})
    report = await refresh(conn, cfg, now=at(5))
    assert report.ranges["m1"] == (at(5 - 2 * 1440), at(5))
    assert report.minutes == 2 * 1440  # not 56 years of minutes
    await write_story(conn, {"state": [(dt.datetime(1970, 1, 2, tzinfo=dt.UTC), IDLE)]})
    again = await refresh(conn, cfg, now=at(6))  # a late mark from 1970: still the horizon
    assert again.ranges["m1"] == (at(6 - 2 * 1440), at(6))


async def test_a_machine_that_fails_does_not_stop_the_others(
    conn: psycopg.AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure refreshing one machine (injected) used to stop the refresh of every machine
    after it, every 10 s. The others are refreshed; the failure is named, with its cause."""
    await write_story(conn, {"state": heartbeat([(at(0), RUN)], until=at(5))})
    m2 = await tag_id(conn, "m2", "state")
    writer = BatchWriter(conn)
    await writer.refresh_tags()
    await writer.write([ReadingRow(t, m2, 1.0) for t, _ in heartbeat([(at(0), 1)], until=at(5))])
    real = rollups._refresh_machine

    async def faulty(c, cfg, machine, *args, **kwargs):  # type: ignore[no-untyped-def]
        if machine.id == "m1":
            raise ZeroDivisionError("injected")
        return await real(c, cfg, machine, *args, **kwargs)

    monkeypatch.setattr(rollups, "_refresh_machine", faulty)
    with pytest.raises(rollups.RollupsFailed) as failed:
        await refresh(conn, plant(), now=at(5))
    assert failed.value.failed == {"m1": "ZeroDivisionError: injected"}
    assert isinstance(failed.value.__cause__, ZeroDivisionError)
    cur = await conn.execute(
        "SELECT machine_id, count(*) FROM machine_minutes GROUP BY 1 ORDER BY 1"
    )
    assert await cur.fetchall() == [("m2", 5)]
