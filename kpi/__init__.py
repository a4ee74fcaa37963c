"""The KPI engine's pure core (KPI.md): no database, no HTTP.

Pipeline for one machine and a window [start, end):

    calendar_time(calendar, start, end)           -> CalendarTime (shifts, breaks in UTC)
    build_timeline(states, reasons, ...)          -> [Interval] classified whole intervals
    cumulative_deltas(samples, ...) / increments  -> [CountEvent] per counter
    window_sums(intervals, start, end, ...)       -> Sums (additive times + counts)
    machine_kpis(sums) / line_kpis(line, sums)    -> Kpis (KPI.md field names)
    series(intervals, start, end, "1h", ...)      -> [(Bucket, Sums)] adding up to the window

Decisions where KPI.md is silent are written down in docs/kpi.md.
"""

from kpi.buckets import Bucket, bucket_spans, parse_bucket, series
from kpi.calendar import (
    CalendarTime,
    ShiftInstance,
    calendar_time,
    shift_at,
    shift_instances,
)
from kpi.counts import (
    CountEvent,
    CountKind,
    Counts,
    CountStreams,
    CycleHistory,
    cumulative_deltas,
    increments,
    plausible_max,
)
from kpi.flags import render as render_flags
from kpi.formulas import Kpis, line_kpis, machine_kpis
from kpi.sums import StateSeconds, Sums, TimeSums, state_seconds, time_elements, window_sums
from kpi.timeline import Interval, TimeClass, build_timeline, clip_timeline, context_margin

__all__ = [
    "Bucket",
    "CalendarTime",
    "CountEvent",
    "CountKind",
    "CountStreams",
    "Counts",
    "CycleHistory",
    "Interval",
    "Kpis",
    "ShiftInstance",
    "StateSeconds",
    "Sums",
    "TimeClass",
    "TimeSums",
    "bucket_spans",
    "build_timeline",
    "calendar_time",
    "clip_timeline",
    "context_margin",
    "cumulative_deltas",
    "increments",
    "line_kpis",
    "machine_kpis",
    "parse_bucket",
    "plausible_max",
    "render_flags",
    "series",
    "shift_at",
    "shift_instances",
    "state_seconds",
    "time_elements",
    "window_sums",
]
