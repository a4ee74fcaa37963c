"""State timeline per KPI.md §1: holding, gaps, reasons, merging, short stops, clipping."""

from __future__ import annotations

import datetime as dt

import pytest

from config.plant import ReasonCategory, StateClass
from config.settings import KpiSettings
from kpi import Interval, TimeClass, build_timeline, clip_timeline
from tests.kpi.builders import DOWN, IDLE, PLANNED, REASONS, RUN, SETUP, STATE_MAP, at

D = "2026-03-02"
R, DN, ID, PS, SU, UK = (
    TimeClass.RUNNING,
    TimeClass.DOWN,
    TimeClass.IDLE,
    TimeClass.PLANNED_STOP,
    TimeClass.SETUP,
    TimeClass.UNKNOWN,
)


BLOCKED, FAULT = 6, 7  # second PLC values for idle and down
MAP = {**STATE_MAP, BLOCKED: StateClass.IDLE, FAULT: StateClass.DOWN}
REASON_TABLE = {**REASONS, 11: ReasonCategory.FAILURE}


def t(clock: str) -> dt.datetime:
    return at(D, clock)


def build(states, reasons=(), since="06:00", until="08:00", **settings) -> list[tuple]:
    intervals = build_timeline(
        [(t(c), v) for c, v in states],
        [(t(c), v) for c, v in reasons],
        state_map=MAP,
        reason_categories=REASON_TABLE,
        since=t(since),
        until=t(until),
        settings=KpiSettings(**settings) if settings else None,
    )
    return [_row(iv) for iv in intervals]


def _row(iv: Interval) -> tuple:
    row = (iv.start.strftime("%H:%M:%S"), iv.end.strftime("%H:%M:%S"), iv.time_class)
    return row + tuple(
        x
        for x in (
            iv.reason and f"r{iv.reason}",
            iv.short_stop and "short",
            iv.unmapped and "unmapped",
        )
        if x
    )


def beats(clock_from: str, clock_to: str, value: int, every_s: int = 30) -> list[tuple[str, int]]:
    cur, end, out = t(clock_from), t(clock_to), []
    while cur < end:
        out.append((cur.strftime("%H:%M:%S"), value))
        cur += dt.timedelta(seconds=every_s)
    return out


CASES = {
    "seed before the window holds into it; equal neighbours merge": (
        dict(
            states=[
                ("05:50", RUN),
                ("06:20", RUN),
                ("06:40", RUN),
                ("07:00", DOWN),
                ("07:20", RUN),
            ],
            max_gap_s=3600,
            heartbeat_s=30,
        ),
        [("05:50:00", "07:00:00", R), ("07:00:00", "07:20:00", DN), ("07:20:00", "08:00:00", R)],
    ),
    "no sample yet: unknown until the first": (
        dict(states=beats("06:30", "08:00", RUN)),
        [("06:00:00", "06:30:00", UK), ("06:30:00", "08:00:00", R)],
    ),
    # Last heartbeat 07:00:00, next sample 07:10:00 -> running until 07:01:00 (+ max_gap),
    # unknown 07:01:00-07:10:00 (540 s).
    "data gap": (
        dict(states=beats("06:00", "07:00:30", RUN) + beats("07:10", "08:00", RUN)),
        [("06:00:00", "07:01:00", R), ("07:01:00", "07:10:00", UK), ("07:10:00", "08:00:00", R)],
    ),
    "a silence of exactly max_gap_s is no gap": (
        dict(
            states=[("06:00", RUN), ("06:01", RUN), ("06:02", RUN), ("06:03", RUN)], until="06:04"
        ),
        [("06:00:00", "06:04:00", R)],
    ),
    "source silent at the end: last value held max_gap_s": (
        dict(states=[("06:00", RUN)], until="06:05"),
        [("06:00:00", "06:01:00", R), ("06:01:00", "06:05:00", UK)],
    ),
    "null value (bad quality) is unknown": (
        dict(
            states=[*beats("06:00", "06:10", RUN), ("06:10", None), *beats("06:11", "06:20", RUN)],
            until="06:20",
        ),
        [("06:00:00", "06:10:00", R), ("06:10:00", "06:11:00", UK), ("06:11:00", "06:20:00", R)],
    ),
    "unmapped PLC value is unknown and marked": (
        dict(
            states=[
                *beats("06:00", "06:10", RUN),
                *beats("06:10", "06:15", 99),
                *beats("06:15", "06:20", RUN),
            ],
            until="06:20",
        ),
        [
            ("06:00:00", "06:10:00", R),
            ("06:10:00", "06:15:00", UK, "unmapped"),
            ("06:15:00", "06:20:00", R),
        ],
    ),
    # Short stops: down 90 s and setup 60 s are short; idle of exactly 120 s is not
    # (shorter than short_stop_s only); planned stops are never short.
    "short stops": (
        dict(
            states=[
                ("06:00", RUN),
                ("06:30", DOWN),
                ("06:31:30", RUN),
                ("06:40", IDLE),
                ("06:42", RUN),
                ("06:50", SETUP),
                ("06:51", RUN),
                ("06:55", PLANNED),
                ("06:55:10", RUN),
            ],
            until="07:00",
            max_gap_s=3600,
        ),
        [
            ("06:00:00", "06:30:00", R),
            ("06:30:00", "06:31:30", DN, "short"),
            ("06:31:30", "06:40:00", R),
            ("06:40:00", "06:42:00", ID),
            ("06:42:00", "06:50:00", R),
            ("06:50:00", "06:51:00", SU, "short"),
            ("06:51:00", "06:55:00", R),
            ("06:55:00", "06:55:10", PS),
            ("06:55:10", "07:00:00", R),
        ],
    ),
    "short_stop_s = 0 disables short stops": (
        dict(
            states=[("06:00", RUN), ("06:30", DOWN), ("06:31:30", RUN)],
            until="07:00",
            max_gap_s=3600,
            short_stop_s=0,
        ),
        [("06:00:00", "06:30:00", R), ("06:30:00", "06:31:30", DN), ("06:31:30", "07:00:00", R)],
    ),
    # Two PLC values of one class merge, so the stop is judged as one 100 s interval.
    "different PLC values of one class merge before the short-stop rule": (
        dict(
            states=[("06:00", RUN), ("06:30", IDLE), ("06:31", BLOCKED), ("06:31:40", RUN)],
            until="07:00",
            max_gap_s=3600,
        ),
        [
            ("06:00:00", "06:30:00", R),
            ("06:30:00", "06:31:40", ID, "short"),
            ("06:31:40", "07:00:00", R),
        ],
    ),
}


@pytest.mark.parametrize(("args", "expected"), list(CASES.values()), ids=list(CASES))
def test_timeline(args, expected) -> None:
    args = dict(args)
    settings = {k: args.pop(k) for k in ("max_gap_s", "short_stop_s", "heartbeat_s") if k in args}
    if "max_gap_s" in settings and "heartbeat_s" not in settings:
        settings["heartbeat_s"] = 30
    assert build(**args, **settings) == expected


REASON_CASES = {
    # The operator enters "no material" (20, idle) two minutes into a down stop: the whole
    # stop is idle; the PLC writing 0 just before it restarts does not undo that.
    "reason entered during the stop explains all of it": (
        [("06:00", RUN), ("07:00", DOWN), ("07:10", RUN)],
        [("06:00", 0), ("07:02", 20), ("07:09:59", 0)],
        [
            ("06:00:00", "07:00:00", R),
            ("07:00:00", "07:10:00", ID, "r20"),
            ("07:10:00", "08:00:00", R),
        ],
    ),
    "reason set a moment after the state change": (
        [("06:00", RUN), ("07:00", DOWN), ("07:10", RUN)],
        [("06:00", 0), ("07:00:00.200", 30)],
        [
            ("06:00:00", "07:00:00", R),
            ("07:00:00", "07:10:00", SU, "r30"),
            ("07:10:00", "08:00:00", R),
        ],
    ),
    "reason in effect at the stop's start; planned category": (
        [("06:00", RUN), ("07:00", DOWN), ("07:10", RUN)],
        [("06:59:59", 40)],
        [
            ("06:00:00", "07:00:00", R),
            ("07:00:00", "07:10:00", PS, "r40"),
            ("07:10:00", "08:00:00", R),
        ],
    ),
    "the last configured reason wins (operator correction)": (
        [("06:00", RUN), ("07:00", IDLE), ("07:10", RUN)],
        [("07:01", 20), ("07:05", 10)],
        [
            ("06:00:00", "07:00:00", R),
            ("07:00:00", "07:10:00", DN, "r10"),
            ("07:10:00", "08:00:00", R),
        ],
    ),
    "a reason never reclassifies running time; unknown codes are no reason": (
        [("06:00", RUN), ("07:00", DOWN), ("07:10", RUN)],
        [("06:10", 10), ("06:20", 0), ("07:01", 77)],
        [("06:00:00", "07:00:00", R), ("07:00:00", "07:10:00", DN), ("07:10:00", "08:00:00", R)],
    ),
    # Two down stops back to back with different reasons stay two intervals (two failures);
    # the first, 60 s long, is a short stop.
    "neighbours with different reasons do not merge": (
        [("06:00", RUN), ("07:00", DOWN), ("07:01", FAULT), ("07:10", RUN)],
        [("07:00", 10), ("07:01", 11)],
        [
            ("06:00:00", "07:00:00", R),
            ("07:00:00", "07:01:00", DN, "r10", "short"),
            ("07:01:00", "07:10:00", DN, "r11"),
            ("07:10:00", "08:00:00", R),
        ],
    ),
}


@pytest.mark.parametrize(
    ("states", "reasons", "expected"), list(REASON_CASES.values()), ids=list(REASON_CASES)
)
def test_stop_reasons(states, reasons, expected) -> None:
    assert build(states, reasons, max_gap_s=3600, heartbeat_s=30) == expected


def test_clipping_keeps_the_whole_interval_classification() -> None:
    # down 07:00:00-07:01:40 (100 s, short) and 07:30:00-07:33:20 (200 s, a failure), each cut
    # in half by a window edge: halves of 50 s and 100 s keep their class.
    intervals = build_timeline(
        [
            (t("06:00"), RUN),
            (t("07:00"), DOWN),
            (t("07:01:40"), RUN),
            (t("07:30"), DOWN),
            (t("07:33:20"), RUN),
        ],
        state_map=STATE_MAP,
        since=t("06:00"),
        until=t("08:00"),
        settings=KpiSettings(max_gap_s=3600),
    )
    left = clip_timeline(intervals, t("06:00"), t("07:00:50"))
    right = clip_timeline(intervals, t("07:00:50"), t("07:31:40"))
    assert [(iv.seconds, iv.time_class, iv.short_stop) for iv in left[-1:] + right] == [
        (50.0, DN, True),
        (50.0, DN, True),
        (1700.0, R, False),  # 07:01:40-07:30:00
        (100.0, DN, False),
    ]


def test_samples_out_of_order_and_repeated_timestamps() -> None:
    # The database gives samples sorted; anything else is sorted here, and of two samples with
    # one timestamp the later given wins (06:30: DOWN, then corrected to IDLE).
    ordered = [("06:00", RUN), ("06:30", IDLE), ("06:40", RUN), ("07:10", RUN), ("09:00", DOWN)]
    shuffled = [("06:40", RUN), ("06:30", DOWN), ("09:00", DOWN), ("06:00", RUN)]
    shuffled += [("07:10", RUN), ("06:30", IDLE)]
    expected = [
        ("06:00:00", "06:30:00", R),
        ("06:30:00", "06:40:00", ID),
        ("06:40:00", "07:41:00", R),  # 07:10 holds max_gap_s; 09:00 is after `until`
        ("07:41:00", "08:00:00", UK),
    ]
    assert build(ordered, max_gap_s=60 * 31) == expected
    assert build(shuffled, max_gap_s=60 * 31) == expected
