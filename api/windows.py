"""Query windows: ISO 8601 parsing, and the default window (the line's current shift).

A time without an offset is refused: "06:00" on a plant in Berlin and a server in UTC would
silently mean two different instants. So is a time outside the span the product handles
(kpi.limits: 1900 .. 2200), here, before anything steps days around it. Without start
and end the window is the current shift of the line's calendar so far (outside every shift: the
last shift that ended; no calendar: the last 8 hours); with only `start` it runs to now.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from api.errors import BadParameter, shown
from config.plant import Calendar
from kpi import shift_at, shift_instances
from kpi.limits import TIME_MAX, TIME_MIN, time_problem

NO_CALENDAR_WINDOW = dt.timedelta(hours=8)
LOOKBACK = dt.timedelta(days=8)  # a weekly calendar has a shift in any 8 days, if any at all
_LOST_PLUS = re.compile(r"\d \d\d(:?\d\d)?$")  # "...06:00:00 01:00": a raw + became a space
# What ISO 8601 times are written with. Python's parser skips a stray character before the
# offset ("06:00:00xZ", even a NUL): such text is refused before it gets there.
_ISO_CHARS = re.compile(r"[0-9TWZtz:.,+\- ]+")


SPAN = f"{TIME_MIN.date().isoformat()} .. {TIME_MAX.date().isoformat()}"


@dataclass(frozen=True, slots=True)
class WindowQuery:
    """`start` and `end` as given (api.deps.get_window_query); `resolve_window` checks them."""

    start: str | None
    end: str | None


@dataclass(frozen=True, slots=True)
class ResolvedWindow:
    start: dt.datetime
    end: dt.datetime
    shift: str | None
    defaulted: bool


def parse_time(name: str, raw: str) -> dt.datetime:
    """An aware UTC datetime from ISO 8601 text inside the product's span; BadParameter naming
    `name` otherwise."""
    text = raw.strip()
    try:
        if _ISO_CHARS.fullmatch(text) is None:
            raise ValueError(text)
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        hint = " (a '+' in a URL must be sent as %2B)" if _LOST_PLUS.search(text) else ""
        raise BadParameter(
            ["query", name],
            f"{shown(raw)} is not an ISO 8601 time (e.g. 2026-03-02T06:00:00+01:00 or ...Z){hint}",
            "datetime_parsing",
        ) from None
    if value.utcoffset() is None:
        raise BadParameter(
            ["query", name],
            f"{shown(raw)} has no UTC offset; add Z or +01:00 (a local time is ambiguous)",
            "timezone_missing",
        )
    problem = time_problem(value)
    if problem is not None:
        raise BadParameter(["query", name], problem, "out_of_range")
    return value.astimezone(dt.UTC)


def default_window(calendar: Calendar | None, now: dt.datetime) -> ResolvedWindow:
    """The current shift so far; else the last shift that ended; else the last 8 hours."""
    if calendar is not None:
        current = shift_at(calendar, now)
        if current is not None and current.start < now:
            return ResolvedWindow(current.start, now, current.name, True)
        ended = [i for i in shift_instances(calendar, now - LOOKBACK, now) if i.end <= now]
        if ended:
            last = max(ended, key=lambda i: (i.end, i.start))
            return ResolvedWindow(last.start, last.end, last.name, True)
    return ResolvedWindow(now - NO_CALENDAR_WINDOW, now, None, True)


def resolve_window(
    query: WindowQuery,
    calendar: Calendar | None,
    now: dt.datetime,
    *,
    max_length: dt.timedelta | None = None,
) -> ResolvedWindow:
    """The window a request asks for, checked: start < end, and not longer than max_length."""
    start, end = query.start, query.end
    if start is None and end is None:
        window = default_window(calendar, now)
    elif start is None:
        raise BadParameter(["query", "start"], "start is required when end is given", "missing")
    else:
        lo = parse_time("start", start)
        hi = parse_time("end", end) if end is not None else now
        if lo >= hi:
            loc = "end" if end is not None else "start"
            why = "start must be before end" if end is not None else "start is in the future"
            raise BadParameter(["query", loc], f"{why} ({lo.isoformat()} >= {hi.isoformat()})")
        window = ResolvedWindow(lo, hi, None, False)
    if max_length is not None and window.end - window.start > max_length:
        raise BadParameter(
            ["query", "end"],
            f"window of {window.end - window.start} is longer than the {max_length} allowed here",
            "window_too_large",
        )
    return window
