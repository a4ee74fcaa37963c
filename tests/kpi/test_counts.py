"""Counter deltas per KPI.md §2: wraps, resets, glitches, delta counters, ideal time."""

from __future__ import annotations

import datetime as dt

import pytest

from kpi import CountKind, CountStreams, CycleHistory, cumulative_deltas, increments
from kpi.counts import Counts
from tests.kpi.builders import at

T0 = at("2026-03-02", "06:00")
C, W, RS, G = CountKind.COUNT, CountKind.WRAP, CountKind.RESET, CountKind.GLITCH


def every_10s(values: list) -> list:
    return [(T0 + dt.timedelta(seconds=10 * i), v) for i, v in enumerate(values)]


# Samples 10 s apart, ideal cycle 1 s: plausible max = 10 / 1 x 1.5 + 10 = 25 per step.
DELTA_CASES = {
    "plain counting": ([0, 5, 12, 12], None, [(5, C), (7, C), (0, C)]),
    # 65,530 -> 4: d = 4 + 65,536 - 65,530 = 10
    "16-bit wrap": ([65_520, 65_530, 4, 9], 65_536, [(10, C), (10, W), (5, C)]),
    "32-bit wrap": ([4_294_967_290, 3], 2**32, [(9, W)]),
    # without a modulus a decrease is a reset: counted from zero
    "reset": ([5_000, 5_010, 3, 8], None, [(10, C), (3, RS), (5, C)]),
    # with a modulus, a decrease whose wrapped delta is implausible is still a reset:
    # 3 + 65,536 - 5,010 = 60,529 > 25
    "reset on a wrapping counter": ([5_000, 5_010, 3], 65_536, [(10, C), (3, RS)]),
    "reset to zero": ([700, 0, 4], None, [(0, RS), (4, C)]),
    "jump of exactly the plausible max": ([100, 125], None, [(25, C)]),
    # a spike: dropped, and the next sample counts against the old baseline (1,001 - 1,000)
    "glitch spike": ([1_000, 60_000, 1_001, 1_003], None, [(0, G), (1, C), (2, C)]),
    # a preset: the jump is dropped, then counting goes on from the new level
    "glitch then new level": ([1_000, 50_000, 50_002, 50_003], None, [(0, G), (2, C), (1, C)]),
    "reset to a value too high to believe": ([1_000, 900], None, [(0, G)]),
    "null samples are skipped": ([10, None, 15, float("nan"), 20], None, [(5, C), (5, C)]),
    # an OPC UA Double or Modbus float32 counter reading ±inf: no count (round(inf) raised and
    # broke rollups and every KPI request of the line)
    "infinities are skipped": ([10, float("inf"), 15, float("-inf"), 20], None, [(5, C), (5, C)]),
    "first sample is only the baseline": ([42], None, []),
}


@pytest.mark.parametrize(
    ("values", "wrap", "expected"), list(DELTA_CASES.values()), ids=list(DELTA_CASES)
)
def test_cumulative_deltas(values, wrap, expected) -> None:
    events = cumulative_deltas(every_10s(values), cycles=CycleHistory.constant(1.0), wrap=wrap)
    assert [(e.delta, e.kind) for e in events] == expected


def test_a_count_belongs_to_the_later_sample() -> None:
    events = cumulative_deltas(every_10s([0, 5, 12]), cycles=CycleHistory.constant(1.0))
    assert [e.time for e in events] == [
        T0 + dt.timedelta(seconds=10),
        T0 + dt.timedelta(seconds=20),
    ]
    streams = CountStreams(CycleHistory.constant(1.0), total=events)
    # [T0, T0+10s) holds no delta; [T0+10s, T0+20s) the 5; the window is half-open
    assert streams.window(T0, T0 + dt.timedelta(seconds=10)).total == 0
    assert streams.window(T0 + dt.timedelta(seconds=10), T0 + dt.timedelta(seconds=20)).total == 5


def test_delta_counters_are_summed_as_they_are() -> None:
    events = increments(every_10s([3, 0, 4, None, 2]))
    assert sum(e.delta for e in events) == 9


def test_flags_with_counts_per_window() -> None:
    samples = every_10s([65_530, 4, 10, 2, 60_000, 3])  # wrap, count, reset, glitch, count
    events = cumulative_deltas(samples, cycles=CycleHistory.constant(1.0), wrap=65_536)
    counts = CountStreams(CycleHistory.constant(1.0), total=events).window(
        T0, T0 + dt.timedelta(minutes=1)
    )
    # 10 (wrap) + 6 + 2 (reset) + 0 (glitch) + 1 (60,000 dropped; 3 - 2) = 19
    assert counts.total == 19
    assert counts.flags == {"counter_wraps": 1, "counter_resets": 1, "counter_glitches": 1}


def test_ideal_time_uses_the_cycle_valid_at_each_count() -> None:
    # 1.0 s until 10:00, 2.0 s from 10:00 (inclusive). Counts: 100 at 09:59:50, 10 at exactly
    # 10:00:00, 40 at 10:01:00 -> ideal = 100 x 1 + 10 x 2 + 40 x 2 = 200 s.
    cycles = CycleHistory(((at("2026-03-02", "10:00"), 2.0), (at("2026-03-02", "00:00"), 1.0)))
    samples = [
        (at("2026-03-02", "09:58:00"), 0),
        (at("2026-03-02", "09:59:50"), 100),  # 110 s at 1.0 s: max 175
        (at("2026-03-02", "10:00:00"), 110),  # fastest over the step is 1.0 s: max 25
        (at("2026-03-02", "10:01:00"), 150),  # 60 s at 2.0 s: max 55
    ]
    events = cumulative_deltas(samples, cycles=cycles)
    assert [e.kind for e in events] == [C, C, C]
    counts = CountStreams(cycles, total=events).window(
        at("2026-03-02", "09:00"), at("2026-03-02", "11:00")
    )
    assert (counts.total, counts.ideal_total_s) == (150, 200.0)


def test_glitch_bound_follows_the_cycle_time() -> None:
    # 40 parts in 30 s: plausible at 1.0 s (30 x 1.5 + 10 = 55), a glitch at 2.0 s (32.5).
    samples = [(T0, 0), (T0 + dt.timedelta(seconds=30), 40)]
    assert cumulative_deltas(samples, cycles=CycleHistory.constant(1.0))[0].kind is C
    assert cumulative_deltas(samples, cycles=CycleHistory.constant(2.0))[0].kind is G


def test_ten_parts_a_step_are_always_plausible() -> None:
    # cycle 1,000 s, 10 s apart: max = 10 / 1,000 x 1.5 + 10 = 10.015, so 10 counts and 11
    # is a glitch (21 is then the new level: 0 more); at the same instant the max is 10.
    slow = CycleHistory.constant(1000.0)
    events = cumulative_deltas(every_10s([0, 10, 21, 21, 5]), cycles=slow)
    assert [(e.delta, e.kind) for e in events] == [(10, C), (0, G), (0, C), (5, RS)]
    same = [(T0, 5), (T0, 15), (T0, 26)]
    assert [(e.delta, e.kind) for e in cumulative_deltas(same, cycles=slow)] == [(10, C), (0, G)]


def test_cycle_history_lookups() -> None:
    cycles = CycleHistory(
        ((T0 + dt.timedelta(hours=1), 2.0), (T0, 1.5), (T0 - dt.timedelta(hours=1), 3.0))
    )
    assert [cycles.at(T0 + dt.timedelta(minutes=m)) for m in (-90, -60, 0, 59, 60, 600)] == [
        3.0, 3.0, 1.5, 1.5, 2.0, 2.0
    ]  # fmt: skip
    assert cycles.fastest(T0 - dt.timedelta(hours=2), T0 + dt.timedelta(hours=2)) == 1.5
    assert cycles.fastest(T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)) == 2.0
    one = CycleHistory.constant(0.7)
    assert (one.at(T0), one.fastest(T0, T0 + dt.timedelta(days=1))) == (0.7, 0.7)


@pytest.mark.parametrize(
    ("given", "expected", "flags"),
    [
        (
            Counts(good=90, reject=10, ideal_good_s=90.0, ideal_reject_s=10.0),
            (90, 10, 100, 90.0, 100.0),
            {},
        ),
        (
            Counts(good=90, total=100, ideal_good_s=90.0, ideal_total_s=100.0),
            (90, 10, 100, 90.0, 100.0),
            {},
        ),
        (
            Counts(reject=10, total=100, ideal_reject_s=10.0, ideal_total_s=100.0),
            (90, 10, 100, 90.0, 100.0),
            {},
        ),
        (
            Counts(
                good=90,
                reject=10,
                total=101,
                ideal_good_s=90.0,
                ideal_reject_s=10.0,
                ideal_total_s=101.0,
            ),
            (90, 10, 101, 90.0, 101.0),
            {"count_mismatch": 1},
        ),
        (
            Counts(total=100, ideal_total_s=100.0),
            (None, None, 100, None, 100.0),
            {"counts_incomplete": 1},
        ),
    ],
)
def test_third_count_is_derived(given, expected, flags) -> None:
    done = given.completed()
    assert (done.good, done.reject, done.total, done.ideal_good_s, done.ideal_total_s) == expected
    assert done.flags == flags


def test_counts_add_and_not_configured_stays_none() -> None:
    a = Counts(good=1, total=2, ideal_good_s=1.0, ideal_total_s=2.0, flags={"counter_resets": 1})
    b = Counts(good=3, total=3, ideal_good_s=3.0, ideal_total_s=3.0, flags={"counter_resets": 2})
    s = a + b
    assert (s.good, s.reject, s.total, s.flags) == (4, None, 5, {"counter_resets": 3})
