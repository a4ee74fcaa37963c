"""Stop time by (reason, class) per machine and UTC minute and hour (migration 007): what the
downtime Pareto (storage.engine.downtime) reads for whole minutes, as the KPIs read
machine_minutes. Written by the rollup refresh in the transaction that writes a chunk's
machine minutes, from the same intervals (storage.rollups), so `covered_until` covers both.

A minute row per (machine, minute, stop key) with stop time in the minute, the key being the
Pareto's (reason code or NULL, class; class `short_stop` for short stops):

- `duration_us`: the key's stop time inside the minute, in microseconds (the timeline's
  resolution: sums and differences of them are exact, see storage.engine.downtime_read);
- `starts`: the key's intervals that start inside the minute;
- `carried`: the interval in effect at the minute's first instant is of this key and began
  before it (at most one key per minute).

Why `starts` and `carried` rather than a count of events: an event is an interval with
productive time in the window (one per interval, also when a break cuts it in two), so whether
an interval counts depends on the calendar and on the window, which a calendar-free row cannot
know. `starts` and `carried` are local facts of the minute: the engine counts the intervals
starting in productive time, plus the interval in effect where each productive run begins
unless that same interval already had productive time before the gap (it spans the gap when it
is carried at both ends of the gap and nothing starts inside it). Rows are calendar-free like
machine_minutes: every minute lies in one calendar region. An hour row sums its minutes'
durations and starts (`carried` only means something at an instant: minutes only).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterator, Sequence

import psycopg

from kpi import Interval, TimeClass
from kpi.spans import Span

MINUTE = dt.timedelta(minutes=1)
MICROSECOND = dt.timedelta(microseconds=1)

# The classes whose intervals are Pareto rows (running and unknown time are not stops).
STOP_ROW_CLASSES = frozenset(
    {TimeClass.DOWN, TimeClass.IDLE, TimeClass.SETUP, TimeClass.PLANNED_STOP}
)
SHORT_STOP = "short_stop"

Key = tuple[int | None, str]  # (reason code or None, class: down ... planned_stop, short_stop)
MinuteRow = tuple[dt.datetime, int | None, str, int, int, bool]


def stop_key(iv: Interval) -> Key | None:
    """The Pareto row an interval's stop time goes to; None for running and unknown time."""
    if iv.time_class not in STOP_ROW_CLASSES:
        return None
    return iv.reason, SHORT_STOP if iv.short_stop else iv.time_class.value


def stop_parts(
    intervals: Sequence[Interval], spans: Sequence[Span]
) -> Iterator[tuple[int, int, Key, dt.timedelta, bool]]:
    """(interval index, span index, key, its length inside the span, carried) for each part of a
    stop interval in each of the sorted disjoint spans, interval by interval; `carried`: the
    interval began before the span (so it is the one in effect at the span's start), else it
    starts inside it. `intervals`: sorted; found by bisection (a month has thousands of stops,
    its calendar hundreds of spans)."""
    if not spans:
        return
    ends = [hi for _, hi in spans]
    n = len(spans)
    for i, iv in enumerate(intervals):
        key = stop_key(iv)
        if key is None:
            continue
        k = bisect.bisect_right(ends, iv.start)
        while k < n:
            lo, hi = spans[k]
            if lo >= iv.end:
                break
            a = iv.start if iv.start > lo else lo
            b = iv.end if iv.end < hi else hi
            yield i, k, key, b - a, iv.start < lo
            k += 1


def minute_rows(
    intervals: Sequence[Interval], start: dt.datetime, end: dt.datetime
) -> list[MinuteRow]:
    """(minute, reason, class, duration_us, starts, carried) of each minute of [start, end)
    (whole minutes) and key with stop time in it."""
    minutes: list[Span] = []
    m = start
    while m < end:
        minutes.append((m, m + MINUTE))
        m += MINUTE
    acc: dict[tuple[int, Key], list] = {}  # [duration_us, starts, carried]
    for _, k, key, length, carried in stop_parts(intervals, minutes):
        row = acc.get((k, key))
        if row is None:
            row = acc[k, key] = [0, 0, False]
        row[0] += length // MICROSECOND
        if carried:
            row[2] = True
        else:
            row[1] += 1
    return [
        (minutes[k][0], reason, cls, us, starts, carried)
        for (k, (reason, cls)), (us, starts, carried) in acc.items()
    ]


_HOURS_SQL = """
INSERT INTO downtime_hours (machine_id, hour, reason, time_class, duration_us, starts)
SELECT machine_id, date_trunc('hour', minute, 'UTC'), reason, time_class, sum(duration_us),
       sum(starts)
FROM downtime_minutes
WHERE machine_id = %(machine)s AND minute >= %(h0)s AND minute < %(h1)s
GROUP BY machine_id, date_trunc('hour', minute, 'UTC'), reason, time_class
"""


async def store(
    cur: psycopg.AsyncCursor,
    machine_id: str,
    intervals: Sequence[Interval],
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    """Replace the machine's minutes of [start, end) (whole UTC minutes) and redo their hours,
    inside the caller's transaction (the one that writes the same minutes of machine_minutes)."""
    rows = minute_rows(intervals, start, end)
    await cur.execute(
        "DELETE FROM downtime_minutes WHERE machine_id = %s AND minute >= %s AND minute < %s",
        (machine_id, start, end),
    )
    async with cur.copy(
        "COPY downtime_minutes (machine_id, minute, reason, time_class, duration_us, starts, "
        "carried) FROM STDIN"
    ) as cp:
        for row in rows:
            await cp.write_row((machine_id, *row))
    # the hours holding [start, end), summed again from all their minutes
    h0 = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    last = (end - MINUTE).astimezone(dt.UTC)
    h1 = last.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    await cur.execute(
        "DELETE FROM downtime_hours WHERE machine_id = %s AND hour >= %s AND hour < %s",
        (machine_id, h0, h1),
    )
    await cur.execute(_HOURS_SQL, {"machine": machine_id, "h0": h0, "h1": h1})
