"""The span of time the product handles: readings, rollups, KPI windows and calendars.

Python's datetime ends at years 1 and 9999, and the KPI math steps days and weeks around a
window (calendar look-backs, shift ends on the next day, local offsets): a time near either end
overflows there. Nothing in a plant's data lies outside these bounds, so the collector refuses
readings outside them (storage.writer) and the API refuses windows outside them.
"""

from __future__ import annotations

import datetime as dt

TIME_MIN = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
TIME_MAX = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def time_problem(t: dt.datetime) -> str | None:
    """Why an aware time is outside [TIME_MIN, TIME_MAX), or None."""
    return None if TIME_MIN <= t < TIME_MAX else outside_span(t)


def outside_span(t: dt.datetime) -> str:
    """The reason for a time outside [TIME_MIN, TIME_MAX)."""
    return (
        f"time {t.isoformat()} is outside the span this product handles "
        f"({TIME_MIN.date().isoformat()} .. {TIME_MAX.date().isoformat()})"
    )
