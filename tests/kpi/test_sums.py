"""Window sums from raw samples: calendar regions, planned stops, unscheduled run, gaps,
short stops, window cuts, DST nights. Figures worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from config.plant import Weekday
from config.settings import KpiSettings
from kpi import TimeSums, machine_kpis, shift_at
from tests.kpi.builders import (
    DOWN,
    IDLE,
    PLANNED,
    RUN,
    SETUP,
    assert_sums_equal,
    at,
    calendar,
    counter,
    heartbeat,
    machine_sums,
)

D = "2026-03-02"


def t(clock: str, day: str = D) -> dt.datetime:
    return at(day, clock)


def story(changes: list[tuple[str, int]], until: str = "16:00") -> list:
    return heartbeat([(t(c), v) for c, v in changes], until=t(until))


def check_invariant(x: TimeSums) -> None:
    pbt = x.planned_busy_time_s
    assert pbt == pytest.approx(x.run_time_s + x.down_time_s + x.idle_time_s + x.setup_time_s)
    assert pbt == pytest.approx(
        x.planned_time_s - x.planned_stop_s - x.unknown_time_s + x.unscheduled_run_s
    )


def test_shift_edge_and_break() -> None:
    # Shift 06:00-14:00, break 10:00-10:30; window 05:30-11:00.
    #   05:50-06:00 running before the shift  -> 600 s unscheduled run
    #   06:10-06:20 down (10 min, a failure)  -> down 600
    #   09:55-10:05 idle, across the break start -> idle 300 (09:55-10:00), rest is break
    #   10:05-10:30 running in the break      -> 1,500 s unscheduled run
    # planned = 06:00-11:00 = 18,000; breaks 1,800; productive 16,200
    # running in productive time = 16,200 - 600 - 300 = 15,300
    # run = 15,300 + 600 + 1,500 = 17,400; PBT = 17,400 + 600 + 300 = 18,300
    #     = 18,000 - 1,800 - 0 + 2,100
    cal = calendar("06:00", "14:00", [("10:00", "10:30")])
    states = story(
        [
            ("05:00", IDLE),
            ("05:50", RUN),
            ("06:10", DOWN),
            ("06:20", RUN),
            ("09:55", IDLE),
            ("10:05", RUN),
            ("12:00", IDLE),
        ]
    )
    s = machine_sums(states=states, start=t("05:30"), end=t("11:00"), cal=cal).times
    assert (s.planned_time_s, s.planned_stop_s, s.unknown_time_s) == (18_000, 1_800, 0)
    assert (s.unscheduled_run_s, s.run_time_s, s.down_time_s, s.idle_time_s) == (
        2_100,
        17_400,
        600,
        300,
    )
    assert (s.planned_busy_time_s, s.failure_events) == (18_300, 1)
    check_invariant(s)
    assert (
        "unscheduled_run"
        in machine_kpis(
            machine_sums(states=states, start=t("05:30"), end=t("11:00"), cal=cal)
        ).flags
    )


def test_planned_stops_from_calendar_and_plc() -> None:
    # Shift 06:00-10:00 (14,400 s) with break 09:00-09:15 (900 s).
    #   07:00-07:30 PLC state planned_stop                    -> 1,800
    #   08:00-08:20 PLC down, reason 40 (planned maintenance) -> 1,200
    # planned_stop = 900 + 1,800 + 1,200 = 3,900; PBT = run = 14,400 - 3,900 = 10,500
    cal = calendar("06:00", "10:00", [("09:00", "09:15")])
    states = story(
        [
            ("05:00", IDLE),
            ("06:00", RUN),
            ("07:00", PLANNED),
            ("07:30", RUN),
            ("08:00", DOWN),
            ("08:20", RUN),
            ("09:00", PLANNED),
            ("09:15", RUN),
            ("10:00", IDLE),
        ]
    )
    reasons = [(t("08:00"), 40), (t("08:20"), 0)]
    s = machine_sums(
        states=states, reasons=reasons, start=t("06:00"), end=t("10:00"), cal=cal
    ).times
    assert (s.planned_time_s, s.planned_stop_s, s.run_time_s, s.down_time_s) == (
        14_400,
        3_900,
        10_500,
        0,
    )
    assert (s.planned_busy_time_s, s.failure_events) == (10_500, 0)
    check_invariant(s)


def test_data_gap_is_unknown_and_leaves_pbt() -> None:
    # Window 06:00-08:00 in shift, break 07:30-08:00 (1,800).
    # Samples stop after 07:00:00 and resume at 07:10:00 -> unknown 07:01:00-07:10:00 = 540 s.
    # A second gap 07:40-07:50 lies in the break: planned stop, not unknown.
    # Running in the break is unscheduled run: 07:30-07:40:30 (the 07:39:30 sample holds
    # 60 s) + 07:50-08:00 = 630 + 600 = 1,230.
    # PBT = 7,200 - 1,800 - 540 + 1,230 = 6,090
    cal = calendar("06:00", "14:00", [("07:30", "08:00")])
    states = [
        *heartbeat([(t("05:00"), RUN)], until=t("07:00:30")),
        *heartbeat([(t("07:10"), RUN)], until=t("07:40")),
        *heartbeat([(t("07:50"), RUN)], until=t("09:00")),
    ]
    k = machine_kpis(machine_sums(states=states, start=t("06:00"), end=t("08:00"), cal=cal))
    assert (k.unknown_time_s, k.planned_stop_s, k.unscheduled_run_s) == (540, 1_800, 1_230)
    assert (k.planned_busy_time_s, k.run_time_s) == (6_090, 6_090)
    assert k.availability == 1.0


def test_short_stops_count_as_run_time() -> None:
    # Window 06:00-09:00 (10,800 s, no break): down 90 s and setup 60 s are short stops,
    # idle of exactly 120 s is not. run = 10,800 - 120 = 10,680 (incl. 150 s short stops).
    cal = calendar("06:00", "14:00")
    states = story(
        [
            ("05:00", RUN),
            ("07:00", DOWN),
            ("07:01:30", RUN),
            ("07:30", IDLE),
            ("07:32", RUN),
            ("08:00", SETUP),
            ("08:01", RUN),
        ]
    )
    s = machine_sums(states=states, start=t("06:00"), end=t("09:00"), cal=cal).times
    assert (s.short_stop_s, s.run_time_s, s.idle_time_s, s.down_time_s, s.setup_time_s) == (
        150,
        10_680,
        120,
        0,
        0,
    )
    assert (s.planned_busy_time_s, s.failure_events) == (10_800, 0)
    # with short stops disabled they are availability losses, the down one a failure
    s0 = machine_sums(
        states=states,
        start=t("06:00"),
        end=t("09:00"),
        cal=cal,
        settings=KpiSettings(short_stop_s=0),
    ).times
    assert (s0.short_stop_s, s0.run_time_s, s0.down_time_s, s0.setup_time_s, s0.failure_events) == (
        0,
        10_530,
        90,
        60,
        1,
    )


def test_window_cutting_an_interval_in_half() -> None:
    # down 07:00:00-07:01:40 (100 s: short) and 07:30:00-07:33:20 (200 s: a failure);
    # windows cut each in half. The short stop stays short (50 + 50), the failure stays down
    # (100 + 100) and its one event falls in the window holding its start.
    cal = calendar("06:00", "14:00")
    states = story(
        [("05:00", RUN), ("07:00", DOWN), ("07:01:40", RUN), ("07:30", DOWN), ("07:33:20", RUN)]
    )
    edges = [t("06:00"), t("07:00:50"), t("07:31:40"), t("09:00")]
    parts = [
        machine_sums(states=states, start=a, end=b, cal=cal) for a, b in itertools.pairwise(edges)
    ]
    whole = machine_sums(states=states, start=edges[0], end=edges[-1], cal=cal)
    assert [p.times.short_stop_s for p in parts] == [50, 50, 0]
    assert [p.times.down_time_s for p in parts] == [0, 100, 100]
    assert [p.times.failure_events for p in parts] == [0, 1, 0]
    assert_sums_equal(parts[0] + parts[1] + parts[2], whole)
    assert (whole.times.short_stop_s, whole.times.down_time_s, whole.times.failure_events) == (
        100,
        200,
        1,
    )


def test_unscheduled_run_outside_the_calendar() -> None:
    # Shift 06:00-14:00; the machine runs 13:00-15:00 and makes 300 parts (ideal 10 s) in
    # 14:00-15:00. Window 14:00-16:00: planned 0, PBT = run = 3,600 (unscheduled),
    # A = 1, P = 300 x 10 / 3,600 = 0.833333
    cal = calendar("06:00", "14:00")
    states = story([("12:00", IDLE), ("13:00", RUN), ("15:00", IDLE)], until="17:00")
    parts = counter(t("13:59:30"), [5] * 60 + [0] * 60)  # 14:00:30 ... 15:59:30
    k = machine_kpis(
        machine_sums(
            states=states,
            start=t("14:00"),
            end=t("16:00"),
            cal=cal,
            counters={"total": parts, "reject": counter(t("13:59:30"), [0] * 120)},
            cycles=10.0,
        )
    )
    assert (k.planned_time_s, k.unscheduled_run_s, k.planned_busy_time_s, k.run_time_s) == (
        0,
        3_600,
        3_600,
        3_600,
    )
    assert k.availability == 1.0
    assert k.performance == pytest.approx(3_000 / 3_600, abs=1e-12)
    assert k.flags == ["unscheduled_run"]


def test_no_calendar_plans_the_whole_window() -> None:
    states = story([("05:00", RUN), ("07:00", DOWN), ("07:10", RUN)])
    k = machine_kpis(machine_sums(states=states, start=t("06:00"), end=t("08:00"), cal=None))
    # planned = 7,200; down 600; A = 6,600 / 7,200
    assert (k.planned_time_s, k.planned_busy_time_s, k.down_time_s) == (7_200, 7_200, 600)
    assert k.availability == pytest.approx(6_600 / 7_200)
    assert k.flags == ["calendar_missing", "counts_incomplete"]  # no counters in this story


def test_unmapped_state_is_flagged() -> None:
    states = story([("05:00", RUN), ("07:00", 99), ("07:05", RUN)])
    k = machine_kpis(
        machine_sums(
            states=states, start=t("06:00"), end=t("08:00"), cal=calendar("06:00", "14:00")
        )
    )
    assert (k.unknown_time_s, k.planned_busy_time_s) == (300, 6_900)
    assert k.flags == ["counts_incomplete", "unmapped_state"]


def test_counter_wrap_and_reset_reach_the_kpi_flags() -> None:
    # A 16-bit total counter sampled every minute (ideal 1 s: plausible max 100 per step):
    # 65,400 (baseline) 65,450 65,500 | 14 (wrap: 14 + 65,536 - 65,500 = 50) 64 114 |
    # 0 (reset: counted 0) 50 100 -> 50 x 7 = 350 parts; rejects stay 0.
    cal = calendar("06:00", "14:00")
    states = story([("05:00", RUN)])
    values = [65_400, 65_450, 65_500, 14, 64, 114, 0, 50, 100]
    times = [t("05:59:30") + dt.timedelta(minutes=i) for i in range(len(values))]
    counters = {"total": list(zip(times, values, strict=True)), "reject": [(ts, 0) for ts in times]}
    k = machine_kpis(
        machine_sums(
            states=states, start=t("06:00"), end=t("07:00"), cal=cal, counters=counters, wrap=65_536
        )
    )
    assert (k.total_count, k.good_count, k.reject_count) == (350, 350, 0)
    assert k.flags == ["counter_resets:1", "counter_wraps:1"]
    assert k.flag_counts == {"counter_resets": 1, "counter_wraps": 1}


@pytest.mark.parametrize(
    ("night_of", "hours"),
    [("2026-03-28", 7), ("2026-10-24", 9)],  # spring forward, fall back (Europe/Berlin)
)
def test_dst_night_shift_full_path(night_of: str, hours: int) -> None:
    cal = calendar("22:00", "06:00", tz="Europe/Berlin", days=list(Weekday), name="night")
    start_local = at(night_of, "22:00", "Europe/Berlin")
    shift = shift_at(cal, start_local + dt.timedelta(hours=3))
    assert shift is not None and shift.start == start_local
    states = heartbeat(
        [(start_local - dt.timedelta(hours=2), RUN)], until=shift.end + dt.timedelta(hours=2)
    )
    k = machine_kpis(machine_sums(states=states, start=shift.start, end=shift.end, cal=cal))
    assert (k.planned_time_s, k.planned_busy_time_s, k.run_time_s) == (hours * 3600,) * 3
    assert k.availability == 1.0
