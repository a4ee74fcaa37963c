"""Additive time and count sums of one machine over a window: what KPIs are computed from.

Everything here adds up: the sums of disjoint windows (per-minute rollups, series buckets,
raw edge pieces) added with `+` equal the sums of their union, and KPIs are computed from
the total only (never by averaging ratios).

The calendar cuts a window into three regions, and each class of the timeline counts in them as
follows (KPI.md §1; "productive" = shifts minus breaks):

| class                 | productive     | calendar break     | outside every shift |
|-----------------------|----------------|--------------------|---------------------|
| running               | run            | run + unscheduled  | run + unscheduled   |
| short stop            | run            | (break)            | -                   |
| down / idle / setup   | down/idle/setup| (break)            | -                   |
| planned_stop (PLC)    | planned stop   | (break)            | -                   |
| unknown               | unknown        | (break)            | -                   |

A break is planned stop as a whole, whatever the machine does; running during a break (or
outside the calendar) is added to PBT as unscheduled run, so staggered breaks where a machine
keeps producing do not inflate performance. Hence PBT = planned - planned_stop - unknown +
unscheduled_run = run + down + idle + setup. A failure event is a non-short down interval
whose (unclipped) start lies in productive time of the window: it is counted in the one
bucket that contains its start.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from kpi.calendar import CalendarTime
from kpi.counts import Counts, CountStreams
from kpi.flags import FlagCounts, add_flags
from kpi.spans import Span, clip, intersect, subtract, total_seconds
from kpi.timeline import Interval, TimeClass


@dataclass(slots=True)
class StateSeconds:
    """Calendar-free seconds per timeline class inside some spans (a rollup row's content)."""

    running_s: float = 0.0
    short_stop_s: float = 0.0
    down_s: float = 0.0
    idle_s: float = 0.0
    setup_s: float = 0.0
    planned_stop_s: float = 0.0
    unknown_s: float = 0.0
    unmapped_s: float = 0.0  # part of unknown_s
    down_starts: int = 0  # non-short down intervals starting inside the spans

    def __add__(self, other: StateSeconds) -> StateSeconds:
        return StateSeconds(*[getattr(self, f) + getattr(other, f) for f in _STATE_FIELDS])


_STATE_FIELDS = tuple(f.name for f in fields(StateSeconds))  # once, not per addition


_FIELD_OF = {
    TimeClass.RUNNING: "running_s",
    TimeClass.DOWN: "down_s",
    TimeClass.IDLE: "idle_s",
    TimeClass.SETUP: "setup_s",
    TimeClass.PLANNED_STOP: "planned_stop_s",
    TimeClass.UNKNOWN: "unknown_s",
}


def state_seconds(intervals: Sequence[Interval], spans: Sequence[Span]) -> StateSeconds:
    """Seconds of each class of whole (unclipped, sorted) intervals inside sorted disjoint spans."""
    acc = dict.fromkeys(_FIELD_OF.values(), 0.0) | {"short_stop_s": 0.0, "unmapped_s": 0.0}
    starts = 0
    if not spans:
        return StateSeconds()
    first = bisect.bisect_right([iv.end for iv in intervals], spans[0][0])
    j = 0
    for iv in intervals[first:]:
        if iv.start >= spans[-1][1]:
            break
        while j < len(spans) and spans[j][1] <= iv.start:
            j += 1
        k = j
        while k < len(spans) and spans[k][0] < iv.end:
            part = clip((iv.start, iv.end), *spans[k])
            if part:
                s = (part[1] - part[0]).total_seconds()
                acc["short_stop_s" if iv.short_stop else _FIELD_OF[iv.time_class]] += s
                if iv.unmapped:
                    acc["unmapped_s"] += s
                if (
                    iv.time_class is TimeClass.DOWN
                    and not iv.short_stop
                    and spans[k][0] <= iv.start < spans[k][1]
                ):
                    starts += 1
            k += 1
    return StateSeconds(**acc, down_starts=starts)


@dataclass(slots=True)
class TimeSums:
    """KPI.md §1 time elements of a window (seconds), additive."""

    planned_time_s: float = 0.0
    planned_stop_s: float = 0.0
    unknown_time_s: float = 0.0
    unscheduled_run_s: float = 0.0
    run_time_s: float = 0.0  # APT: running + short stops
    short_stop_s: float = 0.0
    down_time_s: float = 0.0
    idle_time_s: float = 0.0
    setup_time_s: float = 0.0
    failure_events: int = 0
    unmapped_state_s: float = 0.0
    flags: FlagCounts = field(default_factory=dict)

    @property
    def planned_busy_time_s(self) -> float:
        return self.run_time_s + self.down_time_s + self.idle_time_s + self.setup_time_s

    def __add__(self, other: TimeSums) -> TimeSums:
        return TimeSums(
            self.planned_time_s + other.planned_time_s,
            self.planned_stop_s + other.planned_stop_s,
            self.unknown_time_s + other.unknown_time_s,
            self.unscheduled_run_s + other.unscheduled_run_s,
            self.run_time_s + other.run_time_s,
            self.short_stop_s + other.short_stop_s,
            self.down_time_s + other.down_time_s,
            self.idle_time_s + other.idle_time_s,
            self.setup_time_s + other.setup_time_s,
            self.failure_events + other.failure_events,
            self.unmapped_state_s + other.unmapped_state_s,
            add_flags(self.flags, other.flags),
        )


def time_elements(
    productive: StateSeconds,
    in_breaks: StateSeconds,
    outside: StateSeconds,
    *,
    planned_time_s: float,
    break_s: float,
    calendar_missing: bool = False,
) -> TimeSums:
    """Combine per-region class seconds into time elements (table in the module docstring).

    Rollups can keep calendar-free StateSeconds per minute and call this with the minutes of
    each region summed: shift and break clocks are whole local minutes.
    """
    unscheduled = in_breaks.running_s + outside.running_s
    return TimeSums(
        planned_time_s=planned_time_s,
        planned_stop_s=break_s + productive.planned_stop_s,
        unknown_time_s=productive.unknown_s,
        unscheduled_run_s=unscheduled,
        run_time_s=productive.running_s + productive.short_stop_s + unscheduled,
        short_stop_s=productive.short_stop_s,
        down_time_s=productive.down_s,
        idle_time_s=productive.idle_s,
        setup_time_s=productive.setup_s,
        failure_events=productive.down_starts,
        unmapped_state_s=productive.unmapped_s + in_breaks.unmapped_s + outside.unmapped_s,
        flags={"calendar_missing": 1} if calendar_missing else {},
    )


@dataclass(slots=True)
class Sums:
    """Everything one machine's KPIs need for a window: times and counts, additive."""

    times: TimeSums = field(default_factory=TimeSums)
    counts: Counts = field(default_factory=Counts)

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.times + other.times, self.counts + other.counts)


def window_sums(
    intervals: Sequence[Interval],
    start: dt.datetime,
    end: dt.datetime,
    *,
    calendar: CalendarTime | None,
    counts: CountStreams | None = None,
) -> Sums:
    """One machine's sums for [start, end).

    `intervals`: the whole classified timeline (see timeline.build_timeline for the margin it
    must cover); `calendar`: the calendar's spans for a range containing the window, None when
    the line has no calendar (then the whole window is productive, flag `calendar_missing`).
    """
    window = [(start, end)]
    if calendar is None:
        productive, breaks, outside = window, [], []
        planned_s = total_seconds(window)
    else:
        shifts = intersect(calendar.shifts, window)
        productive = intersect(calendar.planned, window)
        breaks = intersect(calendar.breaks, window)
        outside = subtract(window, shifts)
        planned_s = total_seconds(shifts)
    times = time_elements(
        state_seconds(intervals, productive),
        state_seconds(intervals, breaks),
        state_seconds(intervals, outside),
        planned_time_s=planned_s,
        break_s=total_seconds(breaks),
        calendar_missing=calendar is None,
    )
    return Sums(times, counts.window(start, end) if counts is not None else Counts())
