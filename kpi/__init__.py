"""The KPI engine's pure core (KPI.md): no database, no HTTP. For one machine and a window, the
calendar's spans, the classified timeline and the count events give additive sums, and the KPIs
come from those sums. The pipeline, and the decisions where KPI.md is silent: docs/kpi.md.
"""

from kpi.buckets import Bucket, bucket_spans, parse_bucket
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
    Gaps,
    cumulative_deltas,
    increments,
    plausible_max,
)
from kpi.formulas import Kpis, line_kpis, machine_kpis
from kpi.sums import StateSeconds, Sums, TimeSums, state_seconds, time_elements, window_sums
from kpi.timeline import (
    Interval,
    TimeClass,
    build_timeline,
    clip_timeline,
    context_margin,
    data_gaps,
)

__all__ = [
    "Bucket",
    "CalendarTime",
    "CountEvent",
    "CountKind",
    "CountStreams",
    "Counts",
    "CycleHistory",
    "Gaps",
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
    "data_gaps",
    "increments",
    "line_kpis",
    "machine_kpis",
    "parse_bucket",
    "plausible_max",
    "shift_at",
    "shift_instances",
    "state_seconds",
    "time_elements",
    "window_sums",
]
