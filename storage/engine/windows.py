"""Windows and their calendar regions, cut so that rollup rows can be summed per region in SQL.

Shift and break clocks are whole local minutes, so every UTC minute lies in exactly one region:
productive (shifts minus breaks), calendar break, or outside every shift. A window's whole
minutes are cut per bucket into whole UTC hours and leftover minutes tagged with their region
(`Pieces`), the database sums the rollup rows per bucket and region, and `time_elements` turns
the per-region sums into KPI.md's time elements.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from kpi import CalendarTime
from kpi.limits import time_problem
from kpi.spans import Span, subtract, total_seconds, union
from storage.engine.errors import BadWindow

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
    """Both aware, inside the span the product handles (kpi.limits: the calendar and
    the timelines step days around a window, which overflows near years 1 and 9999), and
    start < end; returned in UTC."""
    if start.utcoffset() is None or end.utcoffset() is None:
        raise BadWindow(start, end, "start and end need a time zone (naive times are ambiguous)")
    for t in (start, end):
        problem = time_problem(t)
        if problem is not None:
            raise BadWindow(start, end, problem)
    if start >= end:
        raise BadWindow(start, end, "start must be before end")
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def resolve_now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.utcoffset() is None:
        raise ValueError(f"now={now.isoformat()} has no time zone")
    return now.astimezone(dt.UTC)


class RegionSpans(NamedTuple):
    """A span cut into the calendar's regions (sorted disjoint UTC spans each). A named tuple:
    one is built per series bucket, and a frozen dataclass costs more to build."""

    productive: list[Span]
    breaks: list[Span]
    outside: list[Span]
    planned_s: float  # shift time inside the span (KPI.md planned_time_s)
    break_s: float

    def by_region(self) -> tuple[tuple[Region, list[Span]], ...]:
        return (
            (Region.PRODUCTIVE, self.productive),
            (Region.BREAK, self.breaks),
            (Region.OUTSIDE, self.outside),
        )


class _SortedSpans:
    """Sorted disjoint spans, clipped to a window by bisection (not by a scan of all)."""

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = union(spans)
        self.ends = [hi for _, hi in self.spans]

    def inside(self, lo: dt.datetime, hi: dt.datetime) -> list[Span]:
        """= intersect(spans, [(lo, hi)])."""
        out: list[Span] = []
        spans = self.spans
        for i in range(bisect.bisect_right(self.ends, lo), len(spans)):
            a, b = spans[i]
            if a >= hi:
                break
            out.append((a if a > lo else lo, b if b < hi else hi))
        return out


_NO_SECONDS = total_seconds([])  # what the general case gives for no spans (an int 0)


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
            # Every edge of the three: between two neighbours an instant's region is fixed.
            spans = (*self.shifts.spans, *self.breaks.spans, *self.planned.spans)
            self.edges = sorted({t for span in spans for t in span})
            # per gap between edges (bisect_right index): (in a shift, in a break, productive)
            self.inside_gap: dict[int, tuple[bool, bool, bool]] = {}

    def __call__(self, lo: dt.datetime, hi: dt.datetime) -> RegionSpans:
        """[lo, hi) cut by the calendar; without a calendar all of it is productive."""
        if self.cal is None:
            return RegionSpans([(lo, hi)], [], [], (hi - lo).total_seconds(), 0.0)
        k = bisect.bisect_right(self.edges, lo)
        if k == len(self.edges) or self.edges[k] >= hi:
            # no edge inside: what the general case below gives, without clipping anything
            # (most buckets of an hourly series)
            inside = self.inside_gap.get(k)
            if inside is None:
                inside = self.inside_gap[k] = (
                    bool(self.shifts.inside(lo, hi)),
                    bool(self.breaks.inside(lo, hi)),
                    bool(self.planned.inside(lo, hi)),
                )
            in_shift, in_break, in_planned = inside
            secs = (hi - lo).total_seconds()  # == total_seconds([(lo, hi)]) for lo < hi
            return RegionSpans(
                productive=[(lo, hi)] if in_planned else [],
                breaks=[(lo, hi)] if in_break else [],
                outside=[] if in_shift else [(lo, hi)],
                planned_s=secs if in_shift else _NO_SECONDS,
                break_s=secs if in_break else _NO_SECONDS,
            )
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


@dataclass
class PieceColumns:
    """Pieces (whole minutes or whole UTC hours of one bucket) as the columns the database
    unnests: `region` is whose class seconds they are, None for an hour only counted."""

    lo: list[dt.datetime] = field(default_factory=list)
    hi: list[dt.datetime] = field(default_factory=list)
    region: list[int | None] = field(default_factory=list)
    bucket: list[int] = field(default_factory=list)

    def add(self, lo: dt.datetime, hi: dt.datetime, region: Region | None, bucket: int) -> None:
        self.lo.append(lo)
        self.hi.append(hi)
        self.region.append(None if region is None else int(region))
        self.bucket.append(bucket)

    def __len__(self) -> int:
        return len(self.lo)


@dataclass
class Pieces:
    """How one query reads a window's rollups, cut per bucket.

    - `hours`: the bucket's whole UTC hours, from machine_hours: their counts, and their class
      seconds when the hour lies in one region (`region` None: an hour cut by a region edge).
    - `minutes`: the bucket's minutes outside whole hours: counts and class seconds.
    - `split`: the minutes of hours cut by a region edge: class seconds only (the hour row
      counts them), so their count columns are not read.

    So every minute's counts are read once and its class seconds once, in its region.
    """

    hours: PieceColumns = field(default_factory=PieceColumns)
    minutes: PieceColumns = field(default_factory=PieceColumns)
    split: PieceColumns = field(default_factory=PieceColumns)

    def add(self, lo: dt.datetime, hi: dt.datetime, cut: RegionSpans, bucket: int) -> None:
        """The minute-aligned part [lo, hi) of bucket number `bucket`, cut into regions."""
        if (
            len(cut.productive) + len(cut.breaks) + len(cut.outside) == 1
            and floor_to(lo, HOUR) == lo
            and floor_to(hi, HOUR) == hi
        ):
            # whole hours in one region (most buckets of an hourly or shift series)
            region = next(region for region, spans in cut.by_region() if spans)
            self.hours.add(lo, hi, region, bucket)
            return
        h0, h1 = ceil_to(lo, HOUR), floor_to(hi, HOUR)
        if h0 >= h1:
            h0 = h1 = hi
        edges = [e for e in ((lo, h0), (h1, hi)) if e[0] < e[1]]
        whole: list[Span] = []
        for region, spans in cut.by_region():
            for a, b in spans:
                for e_lo, e_hi in edges:
                    if a < e_hi and e_lo < b:
                        self.minutes.add(max(a, e_lo), min(b, e_hi), region, bucket)
                if a < h1 and h0 < b:
                    hours, minutes = split_hours((max(a, h0), min(b, h1)))
                    for x, y in hours:
                        self.hours.add(x, y, region, bucket)
                        whole.append((x, y))
                    for x, y in minutes:
                        self.split.add(x, y, region, bucket)
        if h0 < h1:
            for x, y in subtract([(h0, h1)], whole):
                self.hours.add(x, y, None, bucket)


def split_hours(span: Span) -> tuple[list[Span], list[Span]]:
    """(whole UTC hours, leftover minutes) of a minute-aligned span."""
    lo, hi = span
    h0, h1 = ceil_to(lo, HOUR), floor_to(hi, HOUR)
    if h0 >= h1:
        return [], [span]
    minutes = [s for s in ((lo, h0), (h1, hi)) if s[0] < s[1]]
    return [(h0, h1)], minutes
