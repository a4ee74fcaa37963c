"""Windows that start before a machine's first reading or go on after its last one.

Rollup rows start at a machine's first reading (storage.rollups), so the minutes before it have
no rows: they must still count as unknown, as the raw timeline says, and the rollup path must
give what the raw-only path gives (docs/engine.md "Where the figures come from").
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from storage.engine import KpiEngine
from tests.engine.plant import M, assert_same, plant_config, refresh, setup_db, shift, write
from tests.kpi.builders import RUN, at, heartbeat

DAY = "2026-03-02"  # a Monday
BUCKETS = ("15m", "1h", "shift", "day")


def t(clock: str) -> dt.datetime:
    return at(DAY, clock)


def every_10_s(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """A cumulative counter: one part per 10 s from `start` (its first sample is the baseline)."""
    n = int((end - start).total_seconds() // 10)
    return [(start + dt.timedelta(seconds=10 * k), k) for k in range(n)]


def story() -> dict[tuple[str, str], list]:
    """a counts from 05:50 and runs from 06:00, and both stop at 08:00 (its last heartbeat
    07:59:30 holds to 08:00:30); b, the constraint, runs and counts from 06:20:30 (off the
    minute) to 09:00; c from 04:00 to 09:00."""
    return {
        ("a", "state"): heartbeat([(t("06:00"), RUN)], until=t("08:00")),
        ("a", "total_count"): every_10_s(t("05:50"), t("08:00")),
        ("b", "state"): heartbeat([(t("06:20:30"), RUN)], until=t("09:00")),
        ("b", "total_count"): every_10_s(t("06:20:30"), t("09:00")),
        ("c", "state"): heartbeat([(t("04:00"), RUN)], until=t("09:00")),
        ("c", "total_count"): every_10_s(t("04:00"), t("09:00")),
    }


NOW = t("10:00")
WINDOWS = [
    (t("05:30"), t("06:00")),  # all before a's first state, partly before its first reading
    (t("05:30"), t("06:10")),  # b's rollup rows start after this window's whole minutes
    (t("05:00"), t("07:00")),  # whole hours across a's and b's first readings
    (t("05:12:20"), t("06:47:10")),  # off the minute grid
    (t("07:30"), t("09:30")),  # after a's last reading
    (t("04:00"), t("10:00")),
]


async def setup(url: str, with_calendar: bool):
    # a break 05:40-05:45 before a's first reading, so a productive minute, a break and the
    # whole-hour pieces all lie before it
    shifts = [shift("early", "05:00", "13:00", [("05:40", "05:45")])] if with_calendar else None
    cfg = plant_config(
        [M("a", counters={"total": ("cumulative", None)}),
         M("b", counters={"total": ("cumulative", None)}),
         M("c", counters={"total": ("cumulative", None)})],
        shifts=shifts,
        constraint="b",
        outputs=["c"],
    )  # fmt: skip
    ids = setup_db(url, cfg)
    await write(url, ids, story())
    return cfg


@pytest.mark.parametrize("with_calendar", [False, True])
async def test_machine_windows_before_first_and_after_last_reading(
    database_url: str, with_calendar: bool
) -> None:
    cfg = await setup(database_url, with_calendar)
    raw_engine, engine = KpiEngine(cfg, use_rollups=False), KpiEngine(cfg)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, NOW)
        got = {}
        for m in ("a", "b", "c"):
            for s, e in WINDOWS:
                raw = await raw_engine.machine(conn, m, s, e, now=NOW)
                rolled = await engine.machine(conn, m, s, e, now=NOW)
                assert_same(raw, rolled)
                got[m, s, e] = rolled
    a = got["a", t("05:30"), t("06:00")]
    if with_calendar:  # 05:30-05:40 and 05:45-06:00 productive, 05:40-05:45 a break
        assert (a.unknown_time_s, a.planned_stop_s, a.planned_time_s) == (1500, 300, 1800)
    else:  # the figures: 1,200 s before the first reading, 600 s before the first state
        assert (a.unknown_time_s, a.planned_stop_s, a.planned_time_s) == (1800, 0, 1800)
    assert (a.run_time_s, a.total_count) == (0, 59)  # 05:50:10 .. 05:59:50
    b = got["b", t("05:30"), t("06:10")]
    assert (b.unknown_time_s, b.run_time_s, b.total_count) == (
        2100 if with_calendar else 2400,
        0,
        0,
    )
    a = got["a", t("05:00"), t("07:00")]
    assert (a.unknown_time_s, a.run_time_s, a.total_count) == (
        3300 if with_calendar else 3600,
        3600,
        59 + 360,
    )
    b = got["b", t("05:00"), t("07:00")]
    assert (b.unknown_time_s, b.run_time_s, b.total_count) == (
        4530 if with_calendar else 4830,
        2370,
        236,  # 06:20:40 .. 06:59:50
    )
    a = got["a", t("07:30"), t("09:30")]  # runs to 08:00:30, then unknown
    assert (a.unknown_time_s, a.run_time_s, a.total_count) == (5370, 1830, 180)


@pytest.mark.parametrize("with_calendar", [False, True])
async def test_line_and_series_before_first_reading(database_url: str, with_calendar: bool) -> None:
    cfg = await setup(database_url, with_calendar)
    raw_engine, engine = KpiEngine(cfg, use_rollups=False), KpiEngine(cfg)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, NOW)
        for s, e in WINDOWS:
            raw = await raw_engine.line(conn, "l1", s, e, now=NOW)
            rolled = await engine.line(conn, "l1", s, e, now=NOW)
            assert_same(raw.kpis, rolled.kpis)
            for m in ("a", "b", "c"):
                assert_same(raw.machines[m], rolled.machines[m])
        for kind, ident in (("line", "l1"), ("machine", "a"), ("machine", "b")):
            for bucket in BUCKETS:
                for s, e in ((t("04:00"), t("10:00")), (t("05:12:20"), t("09:07:30"))):
                    raw_rows = await raw_engine.series(conn, kind, ident, s, e, bucket, now=NOW)
                    rows = await engine.series(conn, kind, ident, s, e, bucket, now=NOW)
                    assert [b for b, _ in rows] == [b for b, _ in raw_rows]
                    for (_, x), (_, y) in zip(raw_rows, rows, strict=True):
                        assert_same(x, y)
        hourly = await engine.series(conn, "line", "l1", t("05:00"), t("08:00"), "1h", now=NOW)
    # the line's times are the constraint b's: unknown until 06:20:30 (less the break)
    assert [(k.unknown_time_s, k.run_time_s) for _, k in hourly] == [
        (3600 - 300 if with_calendar else 3600, 0),
        (1230, 2370),
        (0, 3600),
    ]
