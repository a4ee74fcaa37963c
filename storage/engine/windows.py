"""Windows and their calendar regions, cut so that rollup rows can be summed per region in SQL.

Shift and break clocks are whole local minutes, so every UTC minute lies in exactly one region:
productive (shifts minus breaks), calendar break, or outside every shift. A window's whole
minutes are cut into region pieces (and each piece into whole UTC hours plus leftover minutes),
the database sums the rollup rows per piece, and `time_elements` turns the per-region sums into
KPI.md's time elements.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from storage.engine.errors import BadWindow
from storage.kpi import CalendarTime
from storage.kpi.spans import Span, total_seconds, union

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Region(IntEnum):
    PRODUCTIVE = 0
    BREAK = 1
    OUTSIDE = 2


def floor_to(t: dt.datetime, step: dt.timedelta) -> dt.datetime:
    return _EPOCH + ((t - _EPOCH) // step) * step


def ceil_to(t: dt.datetime, step: dt.timedelta) -> dt.datetime:
    f = floor_to(t, step)
    return f if f == t else f + step


def check_window(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Both aware and start < end; returned in UTC."""
    if start.utcoffset() is None or end.utcoffset() is None:
        raise BadWindow(start, end, "start and end need a time zone (naive times are ambiguous)")
    if start >= end:
        raise BadWindow(start, end, "start must be before end")
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def resolve_now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.utcoffset() is None:
        raise ValueError(f"now={now.isoformat()} has no time zone")
    return now.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class RegionSpans:
    """A span cut into the calendar's regions (sorted disjoint UTC spans each)."""

    productive: list[Span]
    breaks: list[Span]
    outside: list[Span]
    planned_s: float  # shift time inside the span (KPI.md planned_time_s)
    break_s: float

    def by_region(self) -> list[tuple[Region, list[Span]]]:
        return [
            (Region.PRODUCTIVE, self.productive),
            (Region.BREAK, self.breaks),
            (Region.OUTSIDE, self.outside),
        ]


class _SortedSpans:
    """Sorted disjoint spans, clipped to a window by bisection (not by a scan of all)."""

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = union(spans)
        self.ends = [hi for _, hi in self.spans]

    def inside(self, lo: dt.datetime, hi: dt.datetime) -> list[Span]:
        """= intersect(spans, [(lo, hi)])."""
        out: list[Span] = []
        for a, b in self.spans[bisect.bisect_right(self.ends, lo) :]:
            if a >= hi:
                break
            out.append((max(a, lo), min(b, hi)))
        return out


class RegionCutter:
    """Spans of one calendar (series buckets) cut into its regions: the calendar's spans are
    united and sorted once, each span then costs a bisection instead of intersecting the
    whole window's calendar again (720 times for a 30-day hourly series)."""

    def __init__(self, cal: CalendarTime | None) -> None:
        self.cal = cal
        if cal is not None:
            self.shifts = _SortedSpans(cal.shifts)
            self.breaks = _SortedSpans(cal.breaks)
            self.planned = _SortedSpans(cal.planned)

    def __call__(self, lo: dt.datetime, hi: dt.datetime) -> RegionSpans:
        """[lo, hi) cut by the calendar; without a calendar all of it is productive."""
        if self.cal is None:
            return RegionSpans([(lo, hi)], [], [], (hi - lo).total_seconds(), 0.0)
        shifts = self.shifts.inside(lo, hi)
        breaks = self.breaks.inside(lo, hi)
        outside: list[Span] = []
        cur = lo
        for a, b in shifts:
            if a > cur:
                outside.append((cur, a))
            cur = max(cur, b)
        if cur < hi:
            outside.append((cur, hi))
        return RegionSpans(
            productive=self.planned.inside(lo, hi),
            breaks=breaks,
            outside=outside,
            planned_s=total_seconds(shifts),
            break_s=total_seconds(breaks),
        )


@dataclass(frozen=True, slots=True)
class Piece:
    """Whole minutes (or whole hours) of one region inside one bucket."""

    lo: dt.datetime
    hi: dt.datetime
    region: Region
    bucket: int


def split_hours(span: Span) -> tuple[list[Span], list[Span]]:
    """(whole UTC hours, leftover minutes) of a minute-aligned span."""
    lo, hi = span
    h0, h1 = ceil_to(lo, HOUR), floor_to(hi, HOUR)
    if h0 >= h1:
        return [], [span]
    minutes = [s for s in ((lo, h0), (h1, hi)) if s[0] < s[1]]
    return [(h0, h1)], minutes


def pieces(cut: RegionSpans, bucket: int) -> tuple[list[Piece], list[Piece]]:
    """(hour pieces, minute pieces) of minute-aligned region spans."""
    hours: list[Piece] = []
    minutes: list[Piece] = []
    for region, spans in cut.by_region():
        for span in spans:
            h, m = split_hours(span)
            hours += [Piece(a, b, region, bucket) for a, b in h]
            minutes += [Piece(a, b, region, bucket) for a, b in m]
    return hours, minutes
