"""Engine scenarios with figures derived by hand; each also checked raw-only vs rollups."""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg
import pytest

from kpi import TimeClass
from storage import rollups
from storage.engine import BadBucket, BadWindow, KpiEngine, UnknownEntity
from tests.engine.plant import (
    M,
    assert_same,
    plant_config,
    refresh,
    setup_db,
    shift,
    write,
)
from tests.kpi.builders import DOWN, IDLE, PLANNED, RUN, at, heartbeat

DAY = "2026-03-02"  # a Monday


def t(clock: str) -> dt.datetime:
    return at(DAY, clock)


async def both(conn, cfg, method: str, *args, now):
    """The same question asked raw-only and with rollups; they must agree."""
    raw = await getattr(KpiEngine(cfg, use_rollups=False), method)(conn, *args, now=now)
    rolled = await getattr(KpiEngine(cfg), method)(conn, *args, now=now)
    if method == "line":
        assert_same(raw.kpis, rolled.kpis)
    elif method == "series":
        assert [b for b, _ in raw] == [b for b, _ in rolled]
        for (_, x), (_, y) in zip(raw, rolled, strict=True):
            assert_same(x, y)
    else:
        assert_same(raw, rolled)
    return rolled


# --- counters: a wrap and a reset ----------------------------------------------------------


async def test_counter_wrap_and_reset(database_url: str) -> None:
    cfg = plant_config(
        [M("m1", counters={"total": ("cumulative", 1000), "reject": ("cumulative", None)})],
        shifts=[shift("early", "06:00", "14:00")],
    )
    ids = setup_db(database_url, cfg)
    # total: 950 at 05:59:50, then +5 every 10 s (mod 1000): 360 samples in the hour, wraps
    # after the 10th and the 210th -> 1,800 parts, 2 wraps.
    total = [(t("05:59:50"), 950)] + [
        (t("06:00") + dt.timedelta(seconds=10 * k), (950 + 5 * (k + 1)) % 1000) for k in range(360)
    ]
    # reject: 500 at 05:59, then +1 a minute; at 06:30 the PLC resets it and it reads 3:
    # 30 + 3 (the reset counts its new value) + 29 = 62, 1 reset.
    reject = [(t("05:59"), 500)]
    for k in range(60):
        value = 501 + k if k < 30 else 3 + (k - 30)
        reject.append((t("06:00") + dt.timedelta(minutes=k), value))
    await write(
        database_url,
        ids,
        {
            ("m1", "state"): heartbeat([(t("05:00"), RUN)], until=t("08:00")),
            ("m1", "total_count"): total,
            ("m1", "reject_count"): reject,
        },
    )
    now = t("09:00")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        k = await both(conn, cfg, "machine", "m1", t("06:00"), t("07:00"), now=now)
    assert (k.total_count, k.reject_count, k.good_count) == (1800, 62, 1738)
    assert k.flags == ["counter_resets:1", "counter_wraps:2"]
    assert (k.run_time_s, k.planned_busy_time_s) == (3600, 3600)
    assert k.performance == pytest.approx(0.5, abs=1e-9)  # 1,800 x 1 s / 3,600 s


# --- counts across a data gap (KPI.md §2) -------------------------------------------------


async def test_counts_across_a_data_gap_are_counted_and_flagged(database_url: str) -> None:
    """The source is away 06:20-06:30: no state, no counter. Its counters kept counting: the
    first samples after the gap carry 10 minutes of parts, counted and flagged."""
    cfg = plant_config([M("m1")], shifts=[shift("early", "06:00", "14:00")])
    ids = setup_db(database_url, cfg)
    away = (t("06:20"), t("06:30"))
    minutes = [t("05:59") + dt.timedelta(minutes=k) for k in range(62)]
    seen = [m for m in minutes if not away[0] <= m < away[1]]
    total = [(m, 30 * k) for k, m in enumerate(minutes) if m in seen]  # 30 parts a minute
    reject = [(m, k // 10) for k, m in enumerate(minutes) if m in seen]  # one per 10 minutes
    states = heartbeat([(t("05:00"), RUN)], until=away[0])
    states += heartbeat([(away[1], RUN)], until=t("08:00"))
    await write(
        database_url,
        ids,
        {("m1", "state"): states, ("m1", "total_count"): total, ("m1", "reject_count"): reject},
    )
    now = t("09:00")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        k = await both(conn, cfg, "machine", "m1", t("06:00"), t("07:00"), now=now)
        # every part of the hour is counted: 1,800 total, 6 rejects; the 06:30 samples of both
        # counters were counted from 06:19 across the unknown 06:20:30 - 06:30
        assert (k.total_count, k.reject_count) == (1800, 6)
        assert k.unknown_time_s == 570
        assert k.flags == ["counts_span_unknown:2"]
        # a window that starts after the gap ends sees no such count; one that holds only the
        # gap's tail holds both
        k = await both(conn, cfg, "machine", "m1", t("06:31"), t("07:00"), now=now)
        assert k.flags == []
        k = await both(conn, cfg, "machine", "m1", t("06:29:50"), t("06:30:10"), now=now)
        assert (
            k.flag_counts["counts_span_unknown"] == 2
        )  # (and performance_gt_1: 300 parts in 20 s)


# --- gap, short stop, planned stops from PLC and reason, a cut interval, downtime --------


def story() -> dict:
    states = heartbeat(
        [(t("05:00"), RUN), (t("06:10"), DOWN), (t("06:11:30"), RUN)], until=t("06:20")
    ) + heartbeat(
        [(t("06:30"), RUN), (t("06:40"), PLANNED), (t("06:50"), IDLE), (t("07:00"), DOWN),
         (t("07:10"), RUN)],
        until=t("08:00"),
    )  # fmt: skip
    reasons = [(t("06:50"), 40), (t("07:00"), 10), (t("07:10"), 0)]
    return {("m1", "state"): states, ("m1", "reason"): reasons}


async def test_gap_short_stop_planned_stops(database_url: str) -> None:
    cfg = plant_config([M("m1")], shifts=[shift("early", "06:00", "14:00")])
    ids = setup_db(database_url, cfg)
    await write(database_url, ids, story())
    now = t("09:00")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        k = await both(conn, cfg, "machine", "m1", t("06:00"), t("07:30"), now=now)
        # run 600 + 540 (06:11:30 - 06:20:30: the last sample 06:19:30 holds max_gap_s)
        # + 600 + 1,200; short stop 90; unknown 06:20:30 - 06:30; planned 06:40 - 07:00 (PLC
        # state, then idle explained by reason 40 = planned); down 07:00 - 07:10 (reason 10)
        assert (k.run_time_s, k.short_stop_s, k.unknown_time_s) == (3030, 90, 570)
        assert (k.planned_stop_s, k.down_time_s, k.failure_events) == (1200, 600, 1)
        assert (k.planned_time_s, k.planned_busy_time_s) == (5400, 3630)

        # A window cutting the short stop (06:10 - 06:11:30) and the failure in half, off the
        # minute grid: the short stop stays short, the failure still counts as one event.
        k = await both(conn, cfg, "machine", "m1", t("06:10:45"), t("07:05"), now=now)
        assert (k.run_time_s, k.short_stop_s, k.unknown_time_s) == (1185, 45, 570)
        assert (k.planned_stop_s, k.down_time_s, k.failure_events) == (1200, 300, 1)
        assert (k.planned_time_s, k.planned_busy_time_s) == (3255, 1485)

        engine = KpiEngine(cfg)
        tl = await engine.timeline(conn, "m1", t("06:10:30"), t("06:45"), now=now)
        assert [(i.start, i.end, i.time_class, i.reason, i.short_stop) for i in tl] == [
            (t("06:10:30"), t("06:11:30"), TimeClass.DOWN, None, True),
            (t("06:11:30"), t("06:20:30"), TimeClass.RUNNING, None, False),
            (t("06:20:30"), t("06:30"), TimeClass.UNKNOWN, None, False),
            (t("06:30"), t("06:40"), TimeClass.RUNNING, None, False),
            (t("06:40"), t("06:45"), TimeClass.PLANNED_STOP, None, False),
        ]

        rows = await engine.downtime(conn, "machine", "m1", t("06:00"), t("07:30"), now=now)
        assert [(r.reason, r.time_class, r.duration_s, r.events) for r in rows] == [
            (10, "down", 600, 1),
            (40, "planned_stop", 600, 1),
            (None, "planned_stop", 600, 1),
            (None, "short_stop", 90, 1),
        ]
        assert (rows[0].text, rows[0].category) == ("jam", "failure")
        assert sum(r.share for r in rows) == pytest.approx(1.0)
        assert rows[-1].share == pytest.approx(90 / 1890)

        # current state: running since 07:10 at 08:00:20 (last heartbeat 07:59:30); stale
        # (unknown since 08:00:30) at 08:05.
        cur = (await engine.current_states(conn, now=t("08:00:20")))["m1"]
        assert (cur.time_class, cur.since, cur.value, cur.stale) == (
            TimeClass.RUNNING, t("07:10"), RUN, False
        )  # fmt: skip
        cur = (await engine.current_states(conn, now=t("08:05")))["m1"]
        assert (cur.time_class, cur.since, cur.sample_time, cur.stale) == (
            TimeClass.UNKNOWN, t("08:00:30"), t("07:59:30"), True
        )  # fmt: skip


async def test_late_data_rollups_equal_raw(database_url: str) -> None:
    """The issue's rollup test: rollup + edges == raw for the same windows, also after late
    data arrives (before and after the next refresh)."""
    cfg = plant_config([M("m1")], shifts=[shift("early", "06:00", "14:00", [("07:00", "07:15")])])
    ids = setup_db(database_url, cfg)
    data = story()
    data["m1", "total_count"] = [
        (t("05:30") + dt.timedelta(seconds=5 * k), 2 * k) for k in range(2000)
    ]
    data["m1", "reject_count"] = [
        (t("05:30") + dt.timedelta(seconds=60 * k), k // 3) for k in range(160)
    ]
    await write(database_url, ids, data)
    windows = [
        (t("06:00"), t("08:00")),
        (t("06:10:45"), t("07:05:10")),
        (t("05:00"), t("09:00")),
        (t("06:59:59"), t("07:00:01")),
    ]
    now = t("08:30")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        before = [await both(conn, cfg, "machine", "m1", s, e, now=now) for s, e in windows]
        assert before[0].unknown_time_s == 570
        covered = await rollups.covered_until(conn, ["m1"], kpi=cfg.settings.kpi)
        assert covered["m1"] is not None and covered["m1"] >= t("08:00")  # rollups were used
        # The gap 06:20 - 06:30 is filled by readings that arrive late.
        await write(
            database_url, ids, {("m1", "state"): heartbeat([(t("06:20"), DOWN)], until=t("06:30"))}
        )
        late = [await both(conn, cfg, "machine", "m1", s, e, now=now) for s, e in windows]
        assert late[0].unknown_time_s == 0
        covered = await rollups.covered_until(conn, ["m1"], kpi=cfg.settings.kpi)
        assert covered["m1"] is not None and covered["m1"] <= t(
            "06:20"
        )  # late data: raw from there
        assert late[0].down_time_s == 600  # 06:20 - 06:30; the 07:00 failure lies in the break
        await refresh(conn, cfg, now)
        after = [await both(conn, cfg, "machine", "m1", s, e, now=now) for s, e in windows]
        for x, y in zip(late, after, strict=True):
            assert_same(x, y)
        for bucket in ("15m", "1h", "shift", "day"):
            await both(
                conn, cfg, "series", "machine", "m1", t("05:00"), t("09:00"), bucket, now=now
            )


# --- a night shift across midnight, over the spring DST change, and series buckets --------

BERLIN = "Europe/Berlin"


def local(day: str, clock: str) -> dt.datetime:
    return at(day, clock, BERLIN)


async def test_night_shift_dst_and_series(database_url: str) -> None:
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    cfg = plant_config(
        [M("m1", counters={"total": ("cumulative", None), "reject": ("cumulative", None)})],
        shifts=[shift("night", "22:00", "06:00", days=every_day)],
        tz=BERLIN,
    )
    ids = setup_db(database_url, cfg)
    s, e = local("2026-03-28", "12:00"), local("2026-03-29", "12:00")  # 23 h: clocks spring
    first = s - dt.timedelta(hours=1)
    n = int((e - first).total_seconds() // 60) + 60
    await write(
        database_url,
        ids,
        {
            ("m1", "state"): heartbeat([(first, RUN)], until=e + dt.timedelta(hours=1)),
            ("m1", "total_count"): [(first + dt.timedelta(minutes=k), 30 * k) for k in range(n)],
            ("m1", "reject_count"): [(first + dt.timedelta(minutes=k), k // 10) for k in range(n)],
        },
    )
    now = e + dt.timedelta(hours=2)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        k = await both(conn, cfg, "machine", "m1", s, e, now=now)
        # the night from Saturday 22:00 CET to Sunday 06:00 CEST lasts 7 h
        assert (k.planned_time_s, k.run_time_s) == (25_200, 82_800)
        assert k.unscheduled_run_s == 82_800 - 25_200
        assert k.total_count == 30 * 23 * 60
        engine = KpiEngine(cfg)
        for bucket, labels in (
            ("day", [None, None]),
            ("shift", [None, "night", None]),
            ("1h", [None] * 23),
            ("15m", [None] * 92),
        ):
            rows = await both(conn, cfg, "series", "machine", "m1", s, e, bucket, now=now)
            assert [b.label for b, _ in rows] == labels
            assert rows[0][0].start == s and rows[-1][0].end == e
            for field in (
                "planned_time_s",
                "run_time_s",
                "unscheduled_run_s",
                "total_count",
                "reject_count",
            ):
                assert sum(getattr(x, field) for _, x in rows) == pytest.approx(getattr(k, field))
        shift_rows = await engine.series(conn, "machine", "m1", s, e, "shift", now=now)
        assert [(b.start, b.end) for b, _ in shift_rows] == [
            (s, local("2026-03-28", "22:00")),
            (local("2026-03-28", "22:00"), local("2026-03-29", "06:00")),
            (local("2026-03-29", "06:00"), e),
        ]
        assert shift_rows[1][1].planned_time_s == 25_200


# --- errors and the window capped at now ---------------------------------------------------


async def test_errors_and_future(database_url: str) -> None:
    cfg = plant_config([M("m1")], shifts=[shift("early", "06:00", "14:00")])
    ids = setup_db(database_url, cfg)
    await write(
        database_url, ids, {("m1", "state"): heartbeat([(t("05:00"), RUN)], until=t("10:00"))}
    )
    engine = KpiEngine(cfg)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        with pytest.raises(UnknownEntity) as err:
            await engine.machine(conn, "nope", t("06:00"), t("07:00"))
        assert (err.value.kind, err.value.ident, str(err.value)) == (
            "machine",
            "nope",
            "unknown machine 'nope'",
        )
        with pytest.raises(UnknownEntity):
            await engine.line(conn, "l2", t("06:00"), t("07:00"))
        with pytest.raises(BadWindow, match="start must be before end"):
            await engine.line(conn, "l1", t("07:00"), t("07:00"))
        with pytest.raises(BadBucket, match="bad bucket '7m'"):
            await engine.series(conn, "line", "l1", t("06:00"), t("07:00"), "7m")
        # the window's part after now is left out of planned time
        k = await engine.machine(conn, "m1", t("06:00"), t("14:00"), now=t("08:00"))
        assert (k.planned_time_s, k.run_time_s) == (7200, 7200)
        assert dataclasses.asdict(k) == dataclasses.asdict(
            await KpiEngine(cfg, use_rollups=False).machine(
                conn, "m1", t("06:00"), t("14:00"), now=t("08:00")
            )
        )
        k = await engine.machine(conn, "m1", t("15:00"), t("16:00"), now=t("08:00"))
        assert (k.planned_time_s, k.total_count, k.good_count) == (0, 0, 0)
