"""Planned production intervals of a shift calendar, in UTC.

The simulators put a line into planned_stop outside these intervals. The calendar is evaluated on
the wall clock (never compressed by `speed`): the KPI engine applies the same calendar to the
same timestamps, so both agree on what a break is.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from config.plant import Calendar

UTC = dt.UTC


def _local(day: dt.date, clock: dt.time, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def production_intervals(
    calendar: Calendar, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Merged [from, to) intervals of shift time minus breaks that overlap [start, end)."""
    tz = ZoneInfo(calendar.timezone)
    first = start.astimezone(tz).date() - dt.timedelta(days=1)
    last = end.astimezone(tz).date() + dt.timedelta(days=1)
    shifts: list[tuple[dt.datetime, dt.datetime]] = []
    breaks: list[tuple[dt.datetime, dt.datetime]] = []
    day = first
    while day <= last:
        for shift in calendar.shifts:
            if day.weekday() not in [d.index for d in shift.days]:
                continue
            s_start = _local(day, shift.start, tz)
            s_end = s_start + shift.duration
            shifts.append((s_start, s_end))
            for brk in shift.breaks:
                b_day = day if brk.start >= shift.start else day + dt.timedelta(days=1)
                b_start = _local(b_day, brk.start, tz)
                e_day = b_day if brk.end > brk.start else b_day + dt.timedelta(days=1)
                breaks.append((b_start, _local(e_day, brk.end, tz)))
        day += dt.timedelta(days=1)
    merged = _merge(shifts)
    for b_start, b_end in sorted(breaks):
        cut: list[tuple[dt.datetime, dt.datetime]] = []
        for s, e in merged:
            if b_end <= s or b_start >= e:
                cut.append((s, e))
                continue
            if s < b_start:
                cut.append((s, b_start))
            if b_end < e:
                cut.append((b_end, e))
        merged = cut
    return [(s, e) for s, e in merged if e > start and s <= end]


def _merge(
    intervals: list[tuple[dt.datetime, dt.datetime]],
) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def planned_boundaries(
    calendar: Calendar, start: dt.datetime, end: dt.datetime
) -> tuple[bool, list[tuple[dt.datetime, bool]]]:
    """Whether production is planned at `start`, and each later change as (when, planned)."""
    intervals = production_intervals(calendar, start, end)
    planned_now = any(s <= start < e for s, e in intervals)
    changes: list[tuple[dt.datetime, bool]] = []
    for s, e in intervals:
        if start < s <= end:
            changes.append((s, True))
        if start < e <= end:
            changes.append((e, False))
    return planned_now, sorted(changes)
