"""A line series reads only counts and flags of the machines other than the constraint
(docs/engine.md): its KPIs must be those of line_kpis over every machine's full sums."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from kpi import bucket_spans, line_kpis
from storage.engine import KpiEngine
from storage.engine.plant import Plant
from storage.engine.sums import bucket_results
from tests.engine.plant import M, assert_same, plant_config, refresh, setup_db, shift, write
from tests.kpi.builders import DOWN, RUN, at, heartbeat

DAY = "2026-03-02"  # a Monday


def t(clock: str) -> dt.datetime:
    return at(DAY, clock)


def every_10_s(start: dt.datetime, end: dt.datetime, value) -> list[tuple[dt.datetime, int]]:
    out, k = [], 0
    while start + dt.timedelta(seconds=10 * k) < end:
        out.append((start + dt.timedelta(seconds=10 * k), value(k)))
        k += 1
    return out


def story() -> dict[tuple[str, str], list]:
    """a, b, c run 06:00-09:00 (b down 08:00-08:20, c on an unmapped value 08:30-08:35); from
    05:50 every machine counts a part per 10 s and a reject per 10 min (c: per 20 min, good and
    reject counters); a's total reads a glitch at 07:30."""
    s, e = t("05:50"), t("09:00")
    data: dict[tuple[str, str], list] = {}
    for m in ("a", "b", "c"):
        changes = [(t("06:00"), RUN)]
        if m == "b":
            changes += [(t("08:00"), DOWN), (t("08:20"), RUN)]
        if m == "c":
            changes += [(t("08:30"), 9), (t("08:35"), RUN)]
        data[m, "state"] = heartbeat(changes, until=e)
        parts = "good_count" if m == "c" else "total_count"
        data[m, parts] = every_10_s(s, e, lambda k: k)
        data[m, "reject_count"] = every_10_s(s, e, lambda k, m=m: k // (120 if m == "c" else 60))
    glitch = t("07:30")
    data["a", "total_count"] = [
        (x, 100_000 if x == glitch else v) for x, v in data["a", "total_count"]
    ]
    return data


@pytest.mark.parametrize("with_calendar", [True, False])
async def test_line_series_equals_line_kpis_of_full_sums(
    database_url: str, with_calendar: bool
) -> None:
    good_reject = {"good": ("cumulative", None), "reject": ("cumulative", None)}
    cfg = plant_config(
        [M("a"), M("b"), M("c", counters=good_reject)],
        shifts=[shift("early", "06:00", "14:00", [("07:00", "07:15")])] if with_calendar else None,
        constraint="b",
        outputs=["a", "c"],
    )
    ids = setup_db(database_url, cfg)
    await write(database_url, ids, story())
    now = t("09:30")
    line = cfg.lines[0]
    plant = Plant(cfg)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await refresh(conn, cfg, now)
        for bucket in ("1h", "15m", "shift", "day"):
            s, e = t("05:50"), t("09:07:30")  # from the first reading, to a raw edge
            results = {}
            for use_rollups in (True, False):
                engine = KpiEngine(cfg, use_rollups=use_rollups)
                got = await engine.series(conn, "line", "l1", s, e, bucket, now=now)
                buckets = bucket_spans(s, e, bucket, plant.calendar(line))
                full = await bucket_results(
                    conn,
                    plant,
                    [m.id for m in line.machines],
                    buckets,
                    plant.calendar(line),
                    now,
                    dict,
                    use_rollups=use_rollups,
                )
                assert [b for b, _ in got] == buckets
                assert [k for _, k in got] == [line_kpis(line, sums) for sums in full]
                results[use_rollups] = got
            for (_, x), (_, y) in zip(results[True], results[False], strict=True):
                assert_same(x, y)
        hourly = await KpiEngine(cfg).series(
            conn, "line", "l1", t("06:00"), t("09:00"), "1h", now=now
        )
    # the constraint b runs through the 07:00-07:15 break: unscheduled run
    flags = ["unscheduled_run"] if with_calendar else ["calendar_missing"]
    # good: a 360 - 6 rejects, c 360; rejects: a 6, b 6, c 3 per hour. The counts stamped
    # 06:00:00 (a and b total and reject, c good) were counted from 05:59:50, before the first
    # state reading: across unknown time (KPI.md §2)
    figures = [(k.good_count, k.reject_count, k.total_count, k.flags) for _, k in hourly]
    assert figures == [
        (714, 15, 729, sorted(["counts_span_unknown:5", *([] if with_calendar else flags)])),
        (714, 15, 729, sorted(["counter_glitches:1", *flags])),
        (714, 15, 729, [] if with_calendar else flags),
    ]
    # the constraint's times: b was down 08:00-08:20
    assert [(k.down_time_s, k.failure_events) for _, k in hourly] == [(0, 0), (0, 0), (1200, 1)]
