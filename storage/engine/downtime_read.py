"""The rollup part of a downtime window (migration 007, storage.reason_rollups), in one query.

For the window's productive runs and the gaps between them inside the rollup span [lo, hi), the
server sums per machine and key the productive time and starts, says which gaps hold stop time
but no start, and gives the key carried at each run and gap start (storage.engine.downtime turns
that into events; docs/engine.md, "Downtime Pareto"). As the KPI rollups are read
(storage.engine.rollup_read): whole UTC hours from `downtime_hours` hash-joined to one range
scan, minutes in a LATERAL subquery per piece, each an index range scan; parameters go
unprepared, so chunks are excluded at plan time. Which pieces: `plan`.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from kpi.spans import Span, clip, subtract
from storage.engine.windows import HOUR, MINUTE, ceil_to, floor_to, split_hours
from storage.reason_rollups import Key

PRODUCTIVE, QUIET, CARRIED_LO, CARRIED_HI = 0, 1, 2, 3  # the kinds of row the statement gives

# Every row read, per (machine, key): its duration and starts, `sign` (+1: added to the productive
# sums, -1: subtracted from them, 0: neither), `gap` (the internal gap it belongs to, or NULL),
# and for minute pieces the piece's number and whether the key is carried at the piece's start
# (c_lo) and at its end (c_hi, when the minute after the piece is read too: `upto`).
# (Hours are summed here already: a month of them is ~14k rows for 5 machines.)
_HOURS_SQL = """
SELECT x.machine_id, x.reason, x.time_class, sum(x.duration_us::float8) AS us,
       sum(x.starts::float8) AS starts, p.sign, p.gap, NULL::bigint AS piece, false AS c_lo,
       false AS c_hi
FROM unnest(%(h_hour)b::timestamptz[], %(h_sign)b::int[], %(h_gap)b::int[]) AS p (hour, sign, gap)
JOIN downtime_hours x ON x.hour = p.hour
WHERE x.machine_id = ANY(%(ids)s) AND x.hour >= %(h_from)s AND x.hour < %(h_to)s
GROUP BY x.machine_id, x.reason, x.time_class, p.sign, p.gap
"""
_MINUTES_SQL = """
SELECT x.machine_id, x.reason, x.time_class, x.us, x.starts, p.sign, p.gap, p.piece,
       x.c_lo, x.c_hi
FROM unnest(%(m_lo)b::timestamptz[], %(m_hi)b::timestamptz[], %(m_upto)b::timestamptz[],
            %(m_sign)b::int[], %(m_gap)b::int[])
     WITH ORDINALITY AS p (lo, hi, upto, sign, gap, piece)
CROSS JOIN LATERAL (
    SELECT r.machine_id, r.reason, r.time_class,
           coalesce(sum(r.duration_us) FILTER (WHERE r.minute < p.hi), 0)::float8 AS us,
           coalesce(sum(r.starts) FILTER (WHERE r.minute < p.hi), 0)::float8 AS starts,
           coalesce(bool_or(r.carried AND r.minute = p.lo), false) AS c_lo,
           coalesce(bool_or(r.carried AND r.minute = p.hi AND p.hi > p.lo), false) AS c_hi
    FROM downtime_minutes r
    WHERE r.machine_id = ANY(%(ids)s) AND r.minute >= p.lo AND r.minute <= p.upto
    GROUP BY r.machine_id, r.reason, r.time_class
) AS x
"""
# The productive sums per (machine, key); the internal gaps with stop time but no start
# (quiet); the keys carried at pieces' starts and ends. Integers are summed as float8 (exact
# below 2^53) and cast back: sum(bigint) is numeric, slower (docs/engine.md). Durations are
# microseconds, so hours less their non-productive minutes are exact: a key with no productive
# time sums to 0.
_OUTER_SQL = f"""
WITH u AS ({{parts}})
SELECT {PRODUCTIVE} AS kind, machine_id, NULL::bigint AS idx, reason, time_class,
       sum(sign * us), sum(sign * starts)::int
FROM u WHERE sign <> 0 GROUP BY machine_id, reason, time_class HAVING sum(sign * us) <> 0
UNION ALL
SELECT {QUIET}, machine_id, gap, NULL, NULL, NULL, NULL
FROM u WHERE gap IS NOT NULL GROUP BY machine_id, gap HAVING sum(starts) = 0 AND sum(us) > 0
UNION ALL
SELECT {CARRIED_LO}, machine_id, piece, reason, time_class, NULL, NULL FROM u WHERE c_lo
UNION ALL
SELECT {CARRIED_HI}, machine_id, piece, reason, time_class, NULL, NULL FROM u WHERE c_hi
"""


@dataclass
class RollupStops:
    """What the rollup span says, per machine id (see storage.engine.downtime)."""

    # productive seconds and starts per key
    sums: dict[str, dict[Key, tuple[float, int]]] = field(default_factory=dict)
    # the key carried at a run or gap start
    carried: dict[tuple[str, dt.datetime], Key] = field(default_factory=dict)
    # (machine, gap index): the gap's rollup part holds stop time and no start
    quiet: set[tuple[str, int]] = field(default_factory=set)


@dataclass
class _Plan:
    """What the statement reads: hours (+1 or, for a gap, 0) and minute pieces."""

    mid: Span
    hour: list[dt.datetime] = field(default_factory=list)
    h_sign: list[int] = field(default_factory=list)
    h_gap: list[int | None] = field(default_factory=list)
    lo: list[dt.datetime] = field(default_factory=list)
    hi: list[dt.datetime] = field(default_factory=list)
    upto: list[dt.datetime] = field(default_factory=list)
    sign: list[int] = field(default_factory=list)
    gap: list[int | None] = field(default_factory=list)

    def hours(self, span: Span, sign: int, gap: int | None) -> None:
        h = span[0]
        while h < span[1]:
            self.hour.append(h)
            self.h_sign.append(sign)
            self.h_gap.append(gap)
            h += HOUR

    def minutes(self, span: Span, sign: int, gap: int | None) -> None:
        """Minutes [lo, hi); the minute at hi is read too (for the key carried there) when it
        lies inside the rollup span. An empty span [t, t) reads the minute t only."""
        lo, hi = span
        self.lo.append(lo)
        self.hi.append(hi)
        self.upto.append(hi if hi < self.mid[1] else hi - MINUTE)
        self.sign.append(sign)
        self.gap.append(gap)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.hour:
            out |= {"h_hour": self.hour, "h_sign": self.h_sign, "h_gap": self.h_gap}
            out |= {"h_from": min(self.hour), "h_to": max(self.hour) + HOUR}
        if self.lo:
            out |= {"m_lo": self.lo, "m_hi": self.hi, "m_upto": self.upto}
            out |= {"m_sign": self.sign, "m_gap": self.gap}
        return out


def plan(mid: Span, runs: Sequence[Span], gaps: Sequence[Span]) -> _Plan:
    """The pieces of `mid` to read. Productive sums: every whole hour of `mid` that is not all
    non-productive (+1), less the non-productive minutes of those hours (-1), plus the
    productive minutes outside whole hours (+1): where breaks cut most hours, far fewer pieces
    than reading each productive run's minutes. The internal gaps' minutes and hours are read
    for their starts, the key carried at each run and gap start from the minute there."""
    out = _Plan(mid)
    lo, hi = mid
    h0, h1 = ceil_to(lo, HOUR), floor_to(hi, HOUR)
    if h0 >= h1:
        h0 = h1 = hi
    whole = (h0, h1)
    edges = [e for e in ((lo, h0), (h1, hi)) if e[0] < e[1]]
    for run in runs:
        for edge in edges:
            part = clip(run, *edge)
            if part:
                out.minutes(part, 1, None)
    gap_starts = [g[0] for g in gaps]
    idle: list[Span] = []  # whole hours with no productive minute
    for span in subtract([mid], runs):
        k = bisect.bisect_right(gap_starts, span[0]) - 1  # the internal gap holding it, if any
        j = k if k >= 0 and span[1] <= gaps[k][1] else None
        inside = clip(span, *whole)
        if inside:
            hours, minutes = split_hours(inside)
            for part in hours:
                idle.append(part)
                if j is not None:
                    out.hours(part, 0, j)
            for part in minutes:
                out.minutes(part, -1, j)
        if j is not None:
            for edge in edges:
                part = clip(span, *edge)
                if part:
                    out.minutes(part, 0, j)
    for part in subtract([whole], idle):
        out.hours(part, 1, None)
    # run and gap starts no piece starts or ends at: read alone
    seen = {*out.lo, *(h for h, u in zip(out.hi, out.upto, strict=True) if u == h)}
    for t in sorted({span[0] for span in (*runs, *gaps)} - seen):
        if lo <= t < hi:
            out.minutes((t, t), 0, None)
    return out


async def rollup_stops(
    conn: psycopg.AsyncConnection,
    machine_ids: Sequence[str],
    mid: Span,
    runs: Sequence[Span],
    gaps: Sequence[Span],
) -> RollupStops:
    """The rollup figures inside `mid` of the productive `runs` and the `gaps` between them."""
    pieces = plan(mid, runs, gaps)
    parts = [sql for sql, cols in ((_HOURS_SQL, pieces.hour), (_MINUTES_SQL, pieces.lo)) if cols]
    out = RollupStops()
    if not parts or not machine_ids:
        return out
    params = {"ids": list(machine_ids), **pieces.params()}
    async with conn.cursor(binary=True) as cur:
        await cur.execute(_OUTER_SQL.format(parts="UNION ALL".join(parts)), params, prepare=False)
        rows = await cur.fetchall()
    for kind, machine_id, idx, reason, cls, us, starts in rows:
        if kind == PRODUCTIVE:
            out.sums.setdefault(machine_id, {})[reason, cls] = (us / 1e6, starts)
        elif kind == QUIET:
            out.quiet.add((machine_id, idx))
        else:
            t = (pieces.lo if kind == CARRIED_LO else pieces.hi)[idx - 1]
            out.carried[machine_id, t] = (reason, cls)
    return out
