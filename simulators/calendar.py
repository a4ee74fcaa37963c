"""When a line's calendar plans production, as the simulators' model needs it.

The calendar is evaluated on the wall clock (never compressed by `speed`) with the KPI core's
own calendar (`kpi.calendar_time`), so the simulators and the KPI engine agree on what a shift
and a break are.
"""

from __future__ import annotations

import datetime as dt

from config.plant import Calendar
from kpi import calendar_time

_DAY = dt.timedelta(days=1)


def planned_boundaries(
    calendar: Calendar, start: dt.datetime, end: dt.datetime
) -> tuple[bool, list[tuple[dt.datetime, bool]]]:
    """Whether production is planned at `start`, and each later change up to `end` as (when,
    planned). Productive spans are taken a day past `end`, so a span's end at the window's edge
    is not mistaken for a change."""
    planned = calendar_time(calendar, start, end + _DAY).planned
    planned_now = any(s <= start < e for s, e in planned)
    changes: list[tuple[dt.datetime, bool]] = []
    for s, e in planned:
        if start < s <= end:
            changes.append((s, True))
        if start < e <= end:
            changes.append((e, False))
    return planned_now, sorted(changes)
