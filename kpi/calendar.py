"""Planned operating time from a weekly shift calendar, as UTC spans.

Shifts and breaks are written in local wall-clock time of the calendar's zone; KPIs need
UTC instants. Each shift occurrence is placed on the local date it starts on, so a
22:00-06:00 shift really lasts 7 h on the night clocks spring forward and 9 h on the night
they fall back.

Local times that do not exist or occur twice are resolved like zoneinfo with ``fold=0``:

- nonexistent (in the spring gap, e.g. 02:30 on 2026-03-29 in Europe/Berlin): read with the
  offset before the change, i.e. moved forward by the gap (02:30 -> 03:30 CEST);
- ambiguous (in the autumn overlap, e.g. 02:30 on 2026-10-25): the first occurrence (CEST).

Shift starts and ends use the same rule, so consecutive shifts stay adjacent: no gap and no
overlap appears between them on DST nights.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from config.plant import Break, Calendar, Shift
from kpi.spans import Span, clip, intersect, subtract, union

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    """One occurrence of a configured shift, in UTC (not clipped to any window)."""

    name: str
    local_date: dt.date  # the local date the shift starts on
    start: dt.datetime
    end: dt.datetime
    breaks: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class CalendarTime:
    """The calendar inside one window, as sorted disjoint UTC spans.

    `shifts` is planned operating time (KPI.md `planned_time_s`), `breaks` the calendar's
    planned stops within it, and `planned` the productive part: shifts minus breaks.
    """

    shifts: tuple[Span, ...]
    breaks: tuple[Span, ...]
    # computed once: `planned` is asked for per bucket and per piece (30-day hourly series)
    _planned: tuple[Span, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_planned", tuple(subtract(self.shifts, self.breaks)))

    @property
    def planned(self) -> list[Span]:
        return list(self._planned)


def to_utc(day: dt.date, clock: dt.time, tz: ZoneInfo) -> dt.datetime:
    """Local wall-clock time on `day` as a UTC instant (fold=0 rule of the module docstring)."""
    return dt.datetime.combine(day, clock, tzinfo=tz).astimezone(dt.UTC)


def _break_span(day: dt.date, shift: Shift, brk: Break, tz: ZoneInfo) -> Span | None:
    # A break clock before the shift's start clock belongs to the shift's second day.
    b_day = day + _DAY if brk.start < shift.start else day
    e_day = b_day + _DAY if brk.end <= brk.start else b_day
    start, end = to_utc(b_day, brk.start, tz), to_utc(e_day, brk.end, tz)
    return (start, end) if start < end else None


def _instance(day: dt.date, shift: Shift, tz: ZoneInfo) -> ShiftInstance | None:
    start = to_utc(day, shift.start, tz)
    end = to_utc(day + _DAY if shift.end <= shift.start else day, shift.end, tz)
    if end <= start:  # only possible for a tiny shift wholly inside a DST gap
        return None
    breaks = []
    for brk in shift.breaks:
        span = _break_span(day, shift, brk, tz)
        inside = clip(span, start, end) if span else None
        if inside:
            breaks.append(inside)
    return ShiftInstance(shift.name, day, start, end, tuple(union(breaks)))


def shift_instances(
    calendar: Calendar, start: dt.datetime, end: dt.datetime
) -> list[ShiftInstance]:
    """Shift occurrences overlapping [start, end), sorted by start, not clipped."""
    tz = ZoneInfo(calendar.timezone)
    first = start.astimezone(tz).date() - _DAY  # a shift lasts at most 24 h
    last = end.astimezone(tz).date()
    found: list[ShiftInstance] = []
    day = first
    while day <= last:
        for shift in calendar.shifts:
            if any(d.index == day.weekday() for d in shift.days):
                inst = _instance(day, shift, tz)
                if inst and inst.start < end and inst.end > start:
                    found.append(inst)
        day += _DAY
    return sorted(found, key=lambda i: (i.start, i.end, i.name))


def calendar_time(calendar: Calendar, start: dt.datetime, end: dt.datetime) -> CalendarTime:
    """Planned operating time and breaks inside [start, end).

    Overlapping shifts are united (an instant is planned once); breaks count only where no
    other shift running at the same instant is productive, so one shift's break does not
    stop another shift that overlaps it.
    """
    instances = shift_instances(calendar, start, end)
    window = [(start, end)]
    shifts = intersect(union((i.start, i.end) for i in instances), window)
    productive = union(s for i in instances for s in subtract([(i.start, i.end)], i.breaks))
    breaks = subtract(shifts, productive)
    return CalendarTime(tuple(shifts), tuple(breaks))


def shift_at(calendar: Calendar, t: dt.datetime) -> ShiftInstance | None:
    """The shift occurrence containing instant t; with overlapping shifts, the latest started.

    None when t is outside every shift (the API then picks its own default window).
    """
    live = shift_instances(calendar, t, t + dt.timedelta(microseconds=1))
    return max(live, key=lambda i: i.start, default=None)
