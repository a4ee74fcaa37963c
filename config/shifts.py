"""Checks of a shift calendar as a file states it: no two shifts at once, breaks inside shifts.

The KPI engine copes with both (overlapping shifts count once, a break is clipped to its shift:
docs/kpi.md), so a `Calendar` built in code may hold them; in a config file they are mistakes
(a late shift typed 12:00 instead of 14:00, a break on the wrong side of midnight), and
`shopfloor check` says so.

Times are seconds of the local week, Monday 00:00 = 0, with the engine's rules: a shift ending
at or before its start clock ends the next day, and a break clock before the shift's start
clock lies on the shift's second day.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from config.plant import Break, Calendar, Shift

DAY = 86400
WEEK = 7 * DAY

Span = tuple[int, int]  # [start, end) in seconds


def _seconds(clock: dt.time) -> int:
    return clock.hour * 3600 + clock.minute * 60 + clock.second


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds % DAY, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def shift_span(shift: Shift) -> Span:
    """The shift on its start day: [start, end) in seconds from that day's 00:00."""
    start, end = _seconds(shift.start), _seconds(shift.end)
    return start, end + DAY if end <= start else end


def break_span(shift: Shift, brk: Break) -> Span:
    """The break in the frame of `shift_span`; a break whose end is its start lasts a day."""
    start = _seconds(brk.start) + (DAY if brk.start < shift.start else 0)
    length = (_seconds(brk.end) - _seconds(brk.start)) % DAY or DAY
    return start, start + length


def week_spans(shift: Shift) -> list[Span]:
    """Where the shift runs in the week; a Sunday night shift wraps into Monday morning."""
    start, end = shift_span(shift)
    spans: list[Span] = []
    for day in sorted({d.index for d in shift.days}):
        a, b = day * DAY + start, day * DAY + end
        spans += [(a, min(b, WEEK))] + ([(0, b - WEEK)] if b > WEEK else [])
    return spans


def _day_and_clock(seconds: int) -> str:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return f"{days[seconds // DAY]} {_clock(seconds)}"


def overlap_problems(shifts: list[Shift]) -> list[tuple[str, str]]:
    """Each shift that runs while an earlier-listed one does, once, with where they meet.

    One sweep over the sorted spans (O(n log n)): a file may hold thousands of shifts.
    """
    spans = sorted((a, b, i) for i, shift in enumerate(shifts) for a, b in week_spans(shift))
    reported: set[int] = set()
    problems: list[tuple[str, str]] = []
    reach: tuple[int, int] | None = None  # (end, shift) of the span reaching furthest so far
    for start, end, i in spans:
        if reach is not None and start < reach[0] and reach[1] != i:
            j, k = sorted((i, reach[1]))
            if k not in reported:
                reported.add(k)
                problems.append(
                    (
                        f"shifts[{k}]",
                        f"shift {shifts[k].name!r} overlaps shift {shifts[j].name!r} "
                        f"(shifts[{j}]) from {_day_and_clock(start)} to "
                        f"{_day_and_clock(min(end, reach[0]) % WEEK)}: shifts must not overlap",
                    )
                )
        if reach is None or end > reach[0]:
            reach = (end, i)
    return sorted(problems)


def break_problems(i: int, shift: Shift) -> list[tuple[str, str]]:
    start, end = shift_span(shift)
    problems = []
    for j, brk in enumerate(shift.breaks):
        where = f"shifts[{i}].breaks[{j}]"
        if brk.start == brk.end:
            problems.append((where, f"break {brk.name!r} ends when it starts"))
            continue
        b_start, b_end = break_span(shift, brk)
        if b_end > end:
            problems.append(
                (
                    where,
                    f"break {brk.name!r} {_clock(b_start)}-{_clock(b_end)} is not inside shift "
                    f"{shift.name!r} {_clock(start)}-{_clock(end)}",
                )
            )
    return problems


def day_problems(i: int, shift: Shift) -> list[tuple[str, str]]:
    repeated = sorted(d.value for d, n in Counter(shift.days).items() if n > 1)
    return [(f"shifts[{i}].days", f"{', '.join(repeated)} listed twice")] if repeated else []


def calendar_problems(calendar: Calendar) -> list[tuple[str, str]]:
    """Problems of one calendar as (path below the calendar, message)."""
    problems: list[tuple[str, str]] = []
    for i, shift in enumerate(calendar.shifts):
        problems += day_problems(i, shift) + break_problems(i, shift)
    return problems + overlap_problems(calendar.shifts)
