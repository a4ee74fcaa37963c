"""Series buckets over a window whose sums add up to the whole window.

Buckets tile [start, end) exactly: the first and last may be partial, nothing is left out.

- ``<n>m`` / ``<n>h`` (e.g. 15m, 1h): aligned to the local clock of the calendar's zone (UTC
  without a calendar), then stepped in UTC, so an hour bucket is always 3600 s; on the autumn
  DST night local 02:00-03:00 appears as two buckets.
- ``day``: local midnight to local midnight (23 h or 25 h on DST days).
- ``shift``: one bucket per shift occurrence, labelled with its name; the time between shifts
  is a bucket of its own labelled None, so unscheduled runs are never lost from the series.
  Overlapping shifts are cut at every shift edge, each piece labelled with the shift that
  started last.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from config.plant import Calendar
from kpi.calendar import shift_instances, to_utc

# A bucket size, `<number><unit>` (10s, 15m, 1h, 1d), for the KPI series and the tag series
# alike; each has its own rules on top (parse_bucket; api.windows). ASCII digits only (`\d`
# takes any script's), at most 7: no size overflows a timedelta before a rule refuses it.
_SIZE = re.compile(r"([0-9]{1,7})([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Bucket:
    start: dt.datetime
    end: dt.datetime
    label: str | None = None


def bucket_size(text: str, units: str = "smhd") -> dt.timedelta | None:
    """`<number><unit>` with a unit among `units` as a span (may be 0); None for other text."""
    m = _SIZE.fullmatch(text)
    if m is None or m[2] not in units:
        return None
    return dt.timedelta(seconds=int(m[1]) * _UNIT_S[m[2]])


def parse_bucket(bucket: str) -> str | dt.timedelta:
    """'day', 'shift' or Nm/Nh dividing a day; ValueError names what is accepted."""
    if bucket in ("day", "shift"):
        return bucket
    size = bucket_size(bucket, "mh")
    if size and size <= DAY and DAY % size == dt.timedelta(0):
        return size
    raise ValueError(f"bad bucket {bucket!r}: use 'day', 'shift' or e.g. 15m, 1h (dividing a day)")


def _fixed(
    start: dt.datetime, end: dt.datetime, size: dt.timedelta, tz: ZoneInfo
) -> list[dt.datetime]:
    offset = start.astimezone(tz).utcoffset() or dt.timedelta(0)
    local = start.replace(tzinfo=None) + offset
    floor = dt.datetime.min + ((local - dt.datetime.min) // size) * size
    edge = (floor - offset).replace(tzinfo=dt.UTC)
    edges = []
    while edge < end:
        if edge > start:
            edges.append(edge)
        edge += size
    return edges


def _days(start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> list[dt.datetime]:
    day = start.astimezone(tz).date()
    edges: list[dt.datetime] = []
    while True:
        day += dt.timedelta(days=1)
        edge = to_utc(day, dt.time(0), tz)
        if edge >= end:
            return edges
        if edge > start:
            edges.append(edge)


def bucket_spans(
    start: dt.datetime, end: dt.datetime, bucket: str, calendar: Calendar | None = None
) -> list[Bucket]:
    """Tile [start, end) with buckets (see module docstring)."""
    kind = parse_bucket(bucket)
    if start >= end:
        return []
    tz = ZoneInfo(calendar.timezone if calendar else "UTC")
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if kind == "shift":
        instances = shift_instances(calendar, start, end) if calendar else []
        cuts = {t for i in instances for t in (i.start, i.end) if start < t < end}
        edges = [start, *sorted(cuts), end]
        out = []
        for lo, hi in itertools.pairwise(edges):
            live = [i for i in instances if i.start <= lo < i.end]
            label = max(live, key=lambda i: i.start).name if live else None
            out.append(Bucket(lo, hi, label))
        return out
    inner = (
        _fixed(start, end, kind, tz) if isinstance(kind, dt.timedelta) else _days(start, end, tz)
    )
    edges = [start, *inner, end]
    return [Bucket(lo, hi) for lo, hi in itertools.pairwise(edges)]
