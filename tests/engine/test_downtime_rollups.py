"""Downtime from rollups (storage.reason_rollups) equals downtime from the raw timeline.

Two machines with stops that cross minute, hour and window edges and calendar breaks (one that a
break cuts in two productive parts, one wholly inside a break, ones that start in a break and end
in productive time, two short stops of one key back to back across a one-minute break, a data
gap), windows on and off the minute grid, with and without a calendar, a `now` inside the data,
and late readings before and after the next refresh. Equal: the same rows, durations to 1e-6,
events exactly (docs/engine.md, "Downtime Pareto").
"""

from __future__ import annotations

import datetime as dt
import random
from functools import partial

import psycopg
import pytest

from config import ShopfloorConfig
from storage.engine import DowntimeRow, KpiEngine
from storage.engine.rollup_read import rollup_spans
from tests.engine.plant import M, plant_config, refresh, setup_db, shift, write
from tests.kpi.builders import DOWN, IDLE, PLANNED, RUN, SETUP, at, heartbeat

DAY = "2026-03-02"  # a Monday
BREAKS = [("07:00", "07:15"), ("08:30", "08:31"), ("09:59", "10:20"), ("11:00", "11:10"),
          ("12:00", "13:00")]  # fmt: skip


def t(clock: str) -> dt.datetime:
    return at(DAY, clock)


def story() -> dict[tuple[str, str], list]:
    m1 = heartbeat(
        [(t("05:00"), RUN),
         (t("05:50"), IDLE), (t("06:05"), RUN),  # from outside the shift into it (reason 20)
         (t("06:30:50"), DOWN), (t("06:31:20"), RUN),  # a short stop across a minute edge
         (t("06:58:30"), DOWN), (t("07:20"), RUN),  # the 07:00 break cuts it in two parts
         (t("08:29:10"), IDLE), (t("08:31:40"), RUN),  # across the one-minute break
         (t("09:30"), PLANNED), (t("10:40"), RUN),  # across a break and the 10:00 hour edge
         (t("11:02"), SETUP), (t("11:08"), RUN),  # wholly inside the 11:00 break
         (t("11:09"), DOWN), (t("11:10:30"), RUN),  # starts in the break, short
         (t("11:50"), DOWN), (t("13:10"), RUN),  # around the whole-hour break
         (t("13:55"), IDLE), (t("14:10"), RUN)],  # across the shift's end
        until=t("15:00"),
    )  # fmt: skip
    m1_reasons = [(t("05:50"), 20), (t("06:05"), 0), (t("06:58:30"), 10), (t("07:20"), 0),
                  (t("11:02"), 30), (t("11:08"), 0), (t("11:50"), 11), (t("13:10"), 0),
                  (t("13:55"), 20)]  # fmt: skip
    m2 = heartbeat(
        [(t("05:30"), RUN),
         (t("06:59:30"), DOWN), (t("07:00:45"), RUN),  # short, into the break
         (t("07:14"), IDLE), (t("07:15:30"), RUN),  # short, out of the break
         (t("08:29:30"), DOWN), (t("08:30:30"), IDLE),  # two short stops, one key
         (t("08:31:30"), RUN)],
        until=t("09:40"),  # then no data until 09:50
    ) + heartbeat(
        [(t("09:50"), DOWN), (t("10:25"), RUN),
         (t("11:09:50"), IDLE), (t("11:10:10"), RUN),  # across the break's end
         (t("11:59"), SETUP), (t("12:00:40"), RUN),  # into the break
         (t("13:00"), DOWN), (t("14:00"), RUN)],  # one whole hour
        until=t("15:00"),
    )  # fmt: skip
    m2_reasons = [(t("06:59:30"), 11), (t("07:14"), 0), (t("11:09:50"), 20), (t("11:59"), 30),
                  (t("13:00"), 10)]  # fmt: skip
    return {
        ("m1", "state"): m1,
        ("m1", "reason"): m1_reasons,
        ("m2", "state"): m2,
        ("m2", "reason"): m2_reasons,
    }


WINDOWS = [
    ("05:00", "15:00"),
    ("06:00", "14:00"),
    ("06:10:45", "13:05:10"),
    ("07:05", "09:00"),  # starts in a break, inside a stop that has productive time later
    ("07:10:30", "08:30:30"),
    ("06:59:45", "07:00:15"),
    ("07:00", "07:15"),  # exactly a break: no productive time
    ("08:30", "08:31"),
    ("08:29:50", "08:31:10"),
    ("08:00", "11:00"),  # whole hours
    ("09:59", "10:20"),
    ("10:00", "10:40:10"),
    ("11:00", "11:10"),
    ("11:09:30", "11:10:30"),
    ("12:00", "13:00"),
    ("11:50", "13:10"),
    ("12:30", "13:05"),  # starts in the whole-hour break, inside a stop
    ("13:00", "14:00"),
    ("13:59:59.500000", "14:00:00.500000"),
    ("05:55", "06:05"),
    ("14:00", "15:00"),  # outside the shift
    ("09:35", "09:55"),  # the data gap
]


def config(with_calendar: bool) -> ShopfloorConfig:
    shifts = [shift("early", "06:00", "14:00", BREAKS)] if with_calendar else None
    return plant_config([M("m1"), M("m2")], shifts=shifts)


def same(raw: list[DowntimeRow], rolled: list[DowntimeRow], label: str) -> None:
    """The same rows, durations and shares to 1e-6, events exactly."""
    x = {(r.reason, r.time_class): r for r in raw}
    y = {(r.reason, r.time_class): r for r in rolled}
    assert x.keys() == y.keys(), label
    for key, r in x.items():
        got = y[key]
        assert got.duration_s == pytest.approx(r.duration_s, abs=1e-6), (label, key)
        assert got.events == r.events, (label, key)
        assert got.share == pytest.approx(r.share, abs=1e-6), (label, key)
        assert (got.text, got.category) == (r.text, r.category), (label, key)


async def compare(
    conn: psycopg.AsyncConnection,
    cfg: ShopfloorConfig,
    windows: list[tuple[dt.datetime, dt.datetime]],
    now: dt.datetime,
    scopes: tuple[tuple[str, str], ...] = (("line", "l1"), ("machine", "m1"), ("machine", "m2")),
) -> dict[tuple[str, dt.datetime, dt.datetime], list[DowntimeRow]]:
    """Every window for the line and each machine, raw-only against rollups."""
    raw_engine, engine = KpiEngine(cfg, use_rollups=False), KpiEngine(cfg)
    got = {}
    for kind, ident in scopes:
        for s, e in windows:
            raw = await raw_engine.downtime(conn, kind, ident, s, e, now=now)
            rolled = await engine.downtime(conn, kind, ident, s, e, now=now)
            same(raw, rolled, f"{ident} {s:%H:%M:%S.%f} - {e:%H:%M:%S.%f} now {now:%H:%M:%S}")
            got[ident, s, e] = rolled
    return got


def rows_of(rows: list[DowntimeRow]) -> dict[tuple[int | None, str], tuple[float, int]]:
    return {(r.reason, r.time_class): (r.duration_s, r.events) for r in rows}


@pytest.mark.parametrize("with_calendar", [True, False])
@pytest.mark.parametrize("now", ["16:00", "12:30:20"])
async def test_rollups_equal_raw(database_url: str, with_calendar: bool, now: str) -> None:
    cfg = config(with_calendar)
    ids = setup_db(database_url, cfg)
    await write(database_url, ids, story())
    n = t(now)
    windows = [(t(a), t(b)) for a, b in WINDOWS]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, n)
        mid, parts = await rollup_spans(conn, cfg.settings.kpi, ["m1", "m2"], t("05:00"), n)
        assert mid is not None and set(parts) == {"m1", "m2"}  # the rollups are read
        got = await compare(conn, cfg, windows, n)
    if not (with_calendar and now == "16:00"):
        return
    # By hand, m1 over the shift: productive time only, an interval once however many parts
    assert rows_of(got["m1", t("06:00"), t("14:00")]) == {
        (20, "idle"): (300 + 300, 2),  # 06:00-06:05, 13:55-14:00
        (10, "down"): (90 + 300, 1),  # 06:58:30-07:20 less the break
        (11, "down"): (600 + 600, 1),  # 11:50-13:10 less the break
        (None, "planned_stop"): (1740 + 1200, 1),  # 09:30-10:40 less the break
        (None, "idle"): (50 + 40, 1),  # 08:29:10-08:31:40 less the one-minute break
        (None, "short_stop"): (30 + 30, 2),  # 06:30:50-06:31:20, 11:10-11:10:30
    }  # 11:02-11:08 setup lies in a break: no row
    assert got["m1", t("07:00"), t("07:15")] == []
    # m2: the two back-to-back short stops (one key) across the one-minute break are two
    assert rows_of(got["m2", t("08:29:50"), t("08:31:10")]) == {(None, "short_stop"): (20, 2)}
    assert rows_of(got["m2", t("07:05"), t("09:00")]) == {
        (None, "short_stop"): (30 + 30 + 30, 3)  # 07:15-07:15:30, 08:29:30-08:30, 08:31-08:31:30
    }


@pytest.mark.parametrize("with_calendar", [True, False])
async def test_random_windows(database_url: str, with_calendar: bool) -> None:
    """Windows at random instants (whole hours, minutes, seconds and microseconds)."""
    cfg = config(with_calendar)
    ids = setup_db(database_url, cfg)
    await write(database_url, ids, story())
    rng = random.Random(13)
    grains = [3600, 60, 1, 1e-6]
    windows = []
    for _ in range(40):
        grain = rng.choice(grains)
        s = t("04:50") + dt.timedelta(seconds=round(rng.uniform(0, 37200) / grain) * grain)
        e = s + dt.timedelta(seconds=max(grain, round(rng.uniform(0, 36000) / grain) * grain))
        windows.append((s, e))
    now = t("16:00")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        await compare(conn, cfg, windows, now)


async def test_late_data_before_and_after_refresh(database_url: str) -> None:
    """Readings that arrive late fill m2's data gap (its 09:50 stop then begins at 09:40) and
    split its 13:00 stop in two: rollup figures from before them are not read where they may
    have changed, and the next refresh makes them exact again."""
    cfg = config(True)
    ids = setup_db(database_url, cfg)
    await write(database_url, ids, story())
    windows = [(t(a), t(b)) for a, b in WINDOWS]
    now = t("16:00")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        before = await compare(conn, cfg, windows, now)
        await write(
            database_url,
            ids,
            {
                ("m2", "state"): [
                    *heartbeat([(t("09:40"), DOWN)], until=t("09:50")),
                    (t("13:20:10"), RUN),
                ]
            },
        )
        late = await compare(conn, cfg, windows, now)
        await refresh(conn, cfg, now)
        after = await compare(conn, cfg, windows, now)
    shift_window = ("m2", t("06:00"), t("14:00"))
    assert rows_of(before[shift_window])[10, "down"] == (3600, 1)
    assert rows_of(late[shift_window])[10, "down"] == (3580, 2)  # less 13:20:10-13:20:30
    assert rows_of(before[shift_window])[None, "down"] == (540 + 300, 1)  # 09:50-10:25
    assert rows_of(late[shift_window])[None, "down"] == (1140 + 300, 1)  # from 09:40
    assert after == late


async def test_stops_across_nights(database_url: str) -> None:
    """Gaps of whole hours between shifts (read from hour rows): a stop from one shift into the
    next is one event; windows from inside such a gap, and across two of them."""
    cfg = plant_config([M("m1")], shifts=[shift("early", "06:00", "14:00", [("09:00", "09:20")])])
    ids = setup_db(database_url, cfg)
    mon, tue, wed = (partial(at, day) for day in ("2026-03-02", "2026-03-03", "2026-03-04"))
    states = heartbeat(
        [(mon("05:00"), RUN), (mon("13:30"), DOWN), (tue("06:30"), RUN), (tue("13:50"), IDLE),
         (wed("06:05"), RUN)],
        until=wed("07:30"),
    )  # fmt: skip
    await write(
        database_url,
        ids,
        {("m1", "state"): states, ("m1", "reason"): [(mon("13:30"), 10), (tue("06:30"), 0)]},
    )
    now = wed("08:00")
    rng = random.Random(6)
    windows = [
        (mon("13:00"), tue("07:00")),
        (mon("12:00"), wed("07:00")),
        (mon("14:00"), tue("06:00")),  # no productive time
        (mon("13:59:30"), tue("06:00:30")),
        (mon("20:00"), tue("07:00")),
        (tue("05:59"), tue("06:01")),
    ]
    for _ in range(20):
        s = mon("04:00") + dt.timedelta(seconds=rng.randrange(0, 50 * 3600, 60))
        windows.append((s, s + dt.timedelta(seconds=rng.randrange(60, 40 * 3600, 60))))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        got = await compare(conn, cfg, windows, now, scopes=(("machine", "m1"),))
    assert rows_of(got["m1", mon("13:00"), tue("07:00")]) == {(10, "down"): (3600, 1)}
    assert rows_of(got["m1", mon("12:00"), wed("07:00")]) == {
        (10, "down"): (3600, 1),
        (None, "idle"): (600 + 300, 1),  # Tue 13:50-14:00, Wed 06:00-06:05
    }
    assert got["m1", mon("14:00"), tue("06:00")] == []
    assert rows_of(got["m1", mon("20:00"), tue("07:00")]) == {(10, "down"): (1800, 1)}
