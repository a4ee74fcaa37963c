"""Series buckets tile the window, and their sums add up to the whole window's."""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import operator

import pytest

from config.plant import Calendar, Weekday
from config.settings import KpiSettings
from kpi import (
    Bucket,
    CountStreams,
    CycleHistory,
    Interval,
    StateSeconds,
    Sums,
    bucket_spans,
    build_timeline,
    calendar_time,
    context_margin,
    cumulative_deltas,
    machine_kpis,
    parse_bucket,
    state_seconds,
    time_elements,
    window_sums,
)
from kpi.spans import total_seconds
from tests.kpi.builders import (
    DOWN,
    IDLE,
    RUN,
    SETUP,
    STATE_MAP,
    assert_sums_equal,
    at,
    calendar,
    counter,
    heartbeat,
    spread,
)

D = "2026-03-02"
BERLIN = "Europe/Berlin"


def t(clock: str) -> dt.datetime:
    return at(D, clock)


def series(
    intervals: list[Interval],
    start: dt.datetime,
    end: dt.datetime,
    bucket: str,
    *,
    calendar: Calendar | None,
    counts: CountStreams | None = None,
) -> list[tuple[Bucket, Sums]]:
    """One machine's sums per bucket, each from the pure core's window_sums (the engine sums
    buckets its own way, storage.engine.sums); their `+` must equal the whole window's."""
    cal = calendar_time(calendar, start, end) if calendar else None
    ends = [iv.end for iv in intervals]
    starts = [iv.start for iv in intervals]
    out = []
    for b in bucket_spans(start, end, bucket, calendar):
        near = intervals[bisect.bisect_right(ends, b.start) : bisect.bisect_left(starts, b.end)]
        out.append((b, window_sums(near, b.start, b.end, calendar=cal, counts=counts)))
    return out


@pytest.mark.parametrize("bucket", ["15m", "1h", "shift", "day", "5m"])
def test_bucket_sums_equal_the_whole_window(bucket: str) -> None:
    # A busy morning around a shift start and a break, with short stops cut by bucket edges,
    # a failure, unscheduled run, a data gap and counts; the window has ragged edges.
    cal = calendar("06:00", "14:00", [("10:00", "10:30")])
    changes = [
        ("04:00", IDLE),
        ("05:40", RUN),
        ("06:14:10", DOWN),
        ("06:15:50", RUN),
        ("07:00", DOWN),
        ("07:25", RUN),
        ("09:59", SETUP),
        ("10:10", RUN),
        ("11:29:30", IDLE),
        ("11:31", RUN),
    ]
    states = heartbeat([(t(c), v) for c, v in changes], until=t("12:00")) + heartbeat(
        [(t("12:20"), RUN)], until=t("15:00")
    )
    cycles = CycleHistory(((t("00:00"), 1.0), (t("09:00"), 1.5)))
    settings = KpiSettings()
    margin = context_margin(settings)
    start, end = t("05:37:13"), t("13:23:47")
    intervals = build_timeline(
        states, state_map=STATE_MAP, since=start - margin, until=end + margin, settings=settings
    )
    inc = spread(20_000, 600)
    streams = CountStreams(
        cycles,
        total=cumulative_deltas(
            counter(t("04:59:30"), inc, step_s=60, wrap=65_536, start_value=60_000),
            cycles=cycles,
            wrap=65_536,
        ),
        reject=cumulative_deltas(
            counter(t("04:59:30"), [1 if i % 50 == 0 else 0 for i in range(600)]), cycles=cycles
        ),
    )
    parts = series(intervals, start, end, bucket, calendar=cal, counts=streams)
    whole = window_sums(
        intervals, start, end, calendar=calendar_time(cal, start, end), counts=streams
    )
    assert parts[0][0].start == start and parts[-1][0].end == end
    assert all(a[0].end == b[0].start for a, b in itertools.pairwise(parts))
    total = functools.reduce(operator.add, (s for _, s in parts))
    assert_sums_equal(total, whole)
    k_sum, k_whole = machine_kpis(total), machine_kpis(whole)
    for name in ("availability", "performance", "quality", "oee", "throughput_per_hour"):
        assert getattr(k_sum, name) == pytest.approx(getattr(k_whole, name), abs=1e-12), name
    assert (k_sum.flags, k_sum.total_count) == (k_whole.flags, k_whole.total_count)
    # the story really exercises what it claims
    w = whole.times
    assert (
        w.short_stop_s > 0
        and w.failure_events == 1
        and w.unscheduled_run_s > 0
        and w.unknown_time_s > 0
    )
    assert whole.counts.flags.get("counter_wraps") == 1


def test_bucket_edges_align_to_the_local_clock() -> None:
    spans = bucket_spans(t("05:37"), t("07:10"), "1h")
    assert [(b.start.strftime("%H:%M"), b.end.strftime("%H:%M")) for b in spans] == [
        ("05:37", "06:00"),
        ("06:00", "07:00"),
        ("07:00", "07:10"),
    ]
    # India is UTC+05:30: local hours start at :30 UTC
    india = calendar("06:00", "14:00", tz="Asia/Kolkata")
    spans = bucket_spans(t("05:37"), t("07:10"), "1h", india)
    assert [b.start.strftime("%H:%M") for b in spans] == ["05:37", "06:30"]


def test_day_buckets_on_dst_days_are_23_and_25_hours() -> None:
    cal = calendar("06:00", "14:00", tz=BERLIN, days=list(Weekday))
    for day, hours in (("2026-03-29", 23), ("2026-10-25", 25)):
        start = at(day, "00:00", BERLIN) - dt.timedelta(hours=2)
        end = at(day, "00:00", BERLIN) + dt.timedelta(hours=hours + 2)
        spans = bucket_spans(start, end, "day", cal)
        assert [(b.end - b.start).total_seconds() / 3600 for b in spans] == [2, hours, 2]


def test_hour_buckets_through_the_autumn_night() -> None:
    # 22:00 CEST (20:00 UTC) to 06:00 CET (05:00 UTC): 9 whole hours, 02:00 local twice.
    cal = calendar("22:00", "06:00", tz=BERLIN, days=list(Weekday), name="night")
    start, end = at("2026-10-24", "22:00", BERLIN), at("2026-10-25", "06:00", BERLIN)
    spans = bucket_spans(start, end, "1h", cal)
    assert len(spans) == 9 and all((b.end - b.start).total_seconds() == 3600 for b in spans)


def test_shift_buckets_label_shifts_and_the_time_between() -> None:
    cal = calendar("06:00", "14:00")
    spans = bucket_spans(t("05:00"), t("15:00"), "shift", cal)
    assert [(b.start.strftime("%H:%M"), b.end.strftime("%H:%M"), b.label) for b in spans] == [
        ("05:00", "06:00", None),
        ("06:00", "14:00", "early"),
        ("14:00", "15:00", None),
    ]


@pytest.mark.parametrize("bad", ["7m", "0m", "2d", "week", "25h", ""])
def test_bad_bucket_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="bad bucket"):
        parse_bucket(bad)


def test_per_minute_rollup_rows_rebuild_the_window() -> None:
    # The rollup path: calendar-free StateSeconds per minute, summed per calendar region,
    # then time_elements; equal to window_sums over raw intervals.
    cal = calendar("06:00", "14:00", [("10:00", "10:30")])
    changes = [
        ("04:00", IDLE),
        ("05:40", RUN),
        ("06:14:10", DOWN),
        ("06:15:50", RUN),
        ("07:00", DOWN),
        ("07:25", RUN),
        ("09:59", SETUP),
        ("10:10", RUN),
    ]
    states = heartbeat([(t(c), v) for c, v in changes], until=t("12:00"))
    start, end = t("05:30"), t("11:00")
    margin = context_margin(KpiSettings())
    intervals = build_timeline(
        states, state_map=STATE_MAP, since=start - margin, until=end + margin
    )
    ct = calendar_time(cal, start, end)
    regions = {"productive": StateSeconds(), "breaks": StateSeconds(), "outside": StateSeconds()}
    minute = dt.timedelta(minutes=1)
    m = start
    while m < end:
        row = state_seconds(intervals, [(m, m + minute)])
        inside = lambda spans, m=m: any(a <= m < b for a, b in spans)  # noqa: E731
        region = (
            "breaks" if inside(ct.breaks) else "productive" if inside(ct.planned) else "outside"
        )
        regions[region] += row
        m += minute
    rebuilt = time_elements(
        regions["productive"],
        regions["breaks"],
        regions["outside"],
        planned_time_s=total_seconds(ct.shifts),
        break_s=total_seconds(ct.breaks),
    )
    whole = window_sums(intervals, start, end, calendar=ct).times
    assert_sums_equal(Sums(rebuilt), Sums(whole))
    # failure 07:00-07:25; short stop 06:14:10-06:15:50; unscheduled 05:40-06:00 + 10:10-10:30
    assert (whole.failure_events, whole.short_stop_s, whole.unscheduled_run_s) == (
        1,
        100,
        1200 + 1200,
    )
