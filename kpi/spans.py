"""Half-open UTC time spans [start, end) and the set operations the KPI engine needs.

Kept apart so calendar, timeline and window code share one definition of "overlap":
half-open, so adjacent spans never double-count an instant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

Span = tuple[dt.datetime, dt.datetime]


def seconds(span: Span) -> float:
    """Length of a span in seconds (0 for an empty or inverted span)."""
    return max(0.0, (span[1] - span[0]).total_seconds())


def total_seconds(spans: Iterable[Span]) -> float:
    return sum(seconds(s) for s in spans)


def clip(span: Span, start: dt.datetime, end: dt.datetime) -> Span | None:
    """The part of `span` inside [start, end), or None when they do not overlap."""
    lo, hi = max(span[0], start), min(span[1], end)
    return (lo, hi) if lo < hi else None


def union(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-overlapping spans covering the same instants (touching spans are joined)."""
    out: list[Span] = []
    for lo, hi in sorted(s for s in spans if s[0] < s[1]):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def intersect(a: Iterable[Span], b: Iterable[Span]) -> list[Span]:
    """Instants in both span sets, as sorted disjoint spans."""
    left, right = union(a), union(b)
    out: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        lo, hi = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if lo < hi:
            out.append((lo, hi))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Iterable[Span], b: Iterable[Span]) -> list[Span]:
    """Instants in `a` but not in `b`, as sorted disjoint spans."""
    out: list[Span] = []
    cuts = union(b)
    for lo, hi in union(a):
        cur = lo
        for c_lo, c_hi in cuts:
            if c_hi <= cur or c_lo >= hi:
                continue
            if c_lo > cur:
                out.append((cur, c_lo))
            cur = max(cur, c_hi)
            if cur >= hi:
                break
        if cur < hi:
            out.append((cur, hi))
    return out
