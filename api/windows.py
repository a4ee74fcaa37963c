"""Query windows and buckets: ISO 8601 parsing, the default window (the line's current shift), and
each series' bucket rules over the one bucket-size syntax of kpi.buckets. The rules, and why a
time without an offset or outside kpi.limits' span is refused: docs/api.md, "Times and windows"
and "Limits".
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from api.errors import BadParameter, shown
from api.models import Window
from config.plant import Calendar
from kpi import ShiftInstance, shift_at, shift_instances
from kpi.buckets import bucket_size, bucket_spans, parse_bucket
from kpi.limits import TIME_MAX, TIME_MIN, time_problem

MAX_KPI_WINDOW = dt.timedelta(days=366)
# source=raw reads every sample of the window: a counter sampled at 1 Hz is 86,400 a day
MAX_RAW_SOURCE_WINDOW = dt.timedelta(days=7)
MAX_SERIES_BUCKETS = 3000
MAX_TAG_BUCKETS = 10_000
MAX_TAG_BUCKET = dt.timedelta(days=31)
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


def _last_shift_before(calendar: Calendar, t: dt.datetime) -> ShiftInstance | None:
    """The shift that ended last at or before `t`, within LOOKBACK."""
    ended = [i for i in shift_instances(calendar, t - LOOKBACK, t) if i.end <= t]
    return max(ended, key=lambda i: (i.end, i.start)) if ended else None


def default_window(calendar: Calendar | None, now: dt.datetime) -> Window:
    """The current shift so far; else the last shift that ended; else the last 8 hours."""
    if calendar is not None:
        current = shift_at(calendar, now)
        if current is not None and current.start < now:
            return Window(start=current.start, end=now, shift=current.name, defaulted=True)
        last = _last_shift_before(calendar, now)
        if last is not None:
            return Window(start=last.start, end=last.end, shift=last.name, defaulted=True)
    return Window(start=now - NO_CALENDAR_WINDOW, end=now, defaulted=True)


def previous_shift(cal: Calendar | None, current: Window) -> Window:
    """The shift that ended last before `current` began; without a calendar (or a shift in
    LOOKBACK), the same length of time just before it."""
    last = _last_shift_before(cal, current.start) if cal is not None else None
    if last is not None:
        return Window(start=last.start, end=last.end, shift=last.name, defaulted=False)
    span = NO_CALENDAR_WINDOW if cal is None else current.end - current.start
    return Window(start=current.start - span, end=current.start, defaulted=False)


def resolve_window(
    query: WindowQuery,
    calendar: Calendar | None,
    now: dt.datetime,
    *,
    max_length: dt.timedelta | None = None,
    limit_for: str = "this route",
) -> Window:
    """The window a request asks for, checked: start < end, and not longer than max_length (the
    limit of `limit_for`, as the message names it: a route, or a mode like `raw=true`)."""
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
        window = Window(start=lo, end=hi, defaulted=False)
    if max_length is not None and window.end - window.start > max_length:
        raise BadParameter(
            ["query", "end"],
            f"window of {length(window.end - window.start)} exceeds the limit of "
            f"{length(max_length)} for {limit_for}",
            "window_too_large",
        )
    return window


def length(span: dt.timedelta) -> str:
    """A window's length in a message: "698 days", "31 days 2 h 30 min" (timedelta's own
    "698 days, 0:00:00" reads as a time of day)."""
    days, rest = divmod(span, dt.timedelta(days=1))
    hours, rest = divmod(rest, dt.timedelta(hours=1))
    minutes, rest = divmod(rest, dt.timedelta(minutes=1))
    parts = [
        f"{n} {unit}"
        for n, unit in ((days, "day" if days == 1 else "days"), (hours, "h"), (minutes, "min"))
        if n
    ]
    if rest or not parts:
        parts.append(f"{rest.total_seconds():g} s")
    return " ".join(parts)


def check_bucket_count(n: float, bucket: str, most: int) -> None:
    if n > most:
        raise BadParameter(
            ["query", "bucket"],
            f"about {n:.0f} buckets of {bucket!r} in this window; at most {most}: "
            "use a larger bucket or a shorter window",
            "too_many_buckets",
        )


def check_kpi_buckets(bucket: str, w: Window, cal: Calendar | None) -> None:
    """422 for a bucket the KPI series does not take, or more than MAX_SERIES_BUCKETS of it."""
    try:
        kind = parse_bucket(bucket)
    except ValueError:
        raise BadParameter(
            ["query", "bucket"],
            f"bad bucket {shown(bucket)}: use 'day', 'shift' or e.g. 15m, 1h (dividing a day)",
        ) from None
    length = w.end - w.start
    if isinstance(kind, dt.timedelta):
        n = math.ceil(length / kind) + 1  # alignment to the local clock adds at most one
    elif kind == "day":
        n = length.days + 2
    else:
        n = len(bucket_spans(w.start, w.end, bucket, cal))
    check_bucket_count(n, bucket, MAX_SERIES_BUCKETS)


def tag_bucket(bucket: str) -> dt.timedelta:
    """The tag series' bucket width: 1 s to 31 days."""
    width = bucket_size(bucket)
    if not width or width > MAX_TAG_BUCKET:
        raise BadParameter(
            ["query", "bucket"],
            f"bad bucket {shown(bucket)}: use e.g. 10s, 1m, 15m, 1h, 1d (max 31d)",
        )
    return width
