"""Sums of rollup rows (migration 002) per machine, bucket and calendar region, in one query.

The pieces go to the server as arrays; the server joins them against machine_minutes (and
machine_hours for whole hours) and groups, so a 30-day window costs a few hundred index range
scans and returns at most machines x buckets x 3 rows, whatever the window's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from storage.engine.windows import Piece, Region
from storage.kpi import Counts, StateSeconds
from storage.rollups import COUNT_COLUMNS, FLAG_COLUMNS, STATE_COLUMNS

_SUMS = """
    sum(x.running_s), sum(x.short_stop_s), sum(x.down_s), sum(x.idle_s), sum(x.setup_s),
    sum(x.planned_stop_s), sum(x.unknown_s), sum(x.unmapped_s), sum(x.down_starts)::int,
    sum(x.good)::bigint, sum(x.reject)::bigint, sum(x.total)::bigint,
    sum(x.ideal_good_s), sum(x.ideal_reject_s), sum(x.ideal_total_s),
    sum(x.counter_resets)::int, sum(x.counter_wraps)::int, sum(x.counter_glitches)::int
"""

_MINUTE_PIECES = """
SELECT x.machine_id, p.bucket, p.region, {sums}
FROM unnest(%(m_lo)s::timestamptz[], %(m_hi)s::timestamptz[], %(m_region)s::int[],
            %(m_bucket)s::int[]) AS p (lo, hi, region, bucket)
CROSS JOIN LATERAL (
    SELECT r.machine_id, {inner}
    FROM machine_minutes r
    WHERE r.machine_id = ANY(%(ids)s) AND r.minute >= p.lo AND r.minute < p.hi
    GROUP BY r.machine_id
) AS x
GROUP BY 1, 2, 3
"""
# The per-piece sums sit in a LATERAL subquery with its own GROUP BY, so the planner cannot
# flatten it into a join: each piece is one index range scan on (machine_id, minute). As a plain
# join, the planner chose a parallel seq scan of every chunk with the ranges as a join filter
# (~250 ms for a shift, whatever the window).

_HOUR_PIECES = """
SELECT x.machine_id, p.bucket, p.region, {sums}
FROM unnest(%(h_lo)s::timestamptz[], %(h_hi)s::timestamptz[], %(h_region)s::int[],
            %(h_bucket)s::int[]) AS p (lo, hi, region, bucket)
CROSS JOIN LATERAL generate_series(p.lo, p.hi - interval '1 hour', interval '1 hour') AS g (hour)
JOIN machine_hours x ON x.hour = g.hour
WHERE x.machine_id = ANY(%(ids)s) AND x.hour >= %(h_from)s AND x.hour < %(h_to)s
GROUP BY 1, 2, 3
"""
# Hour rows are few (one per machine and hour): one range scan over all the pieces' hours,
# with the bounds as plain parameters so chunks are excluded at plan time, hash-joined to the
# pieces' hours. One lateral scan per piece cost ~20 us each, 720 of them for a 30-day
# hourly series.
_INNER = ", ".join(f"sum(r.{c}) AS {c}" for c in (*STATE_COLUMNS, *COUNT_COLUMNS, *FLAG_COLUMNS))
_MINUTES = _MINUTE_PIECES.format(sums=_SUMS, inner=_INNER)
_HOURS = _HOUR_PIECES.format(sums=_SUMS)


@dataclass
class BucketRollup:
    """One machine's rollup sums inside one bucket: class seconds per region, and counts."""

    regions: dict[Region, StateSeconds] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)


def _arrays(prefix: str, pieces: Sequence[Piece]) -> dict[str, list[object]]:
    return {
        f"{prefix}_lo": [p.lo for p in pieces],
        f"{prefix}_hi": [p.hi for p in pieces],
        f"{prefix}_region": [int(p.region) for p in pieces],
        f"{prefix}_bucket": [p.bucket for p in pieces],
    }


async def rollup_sums(
    conn: psycopg.AsyncConnection,
    machine_ids: Sequence[str],
    hours: Sequence[Piece],
    minutes: Sequence[Piece],
    configured: dict[str, frozenset[str]],
) -> dict[tuple[str, int], BucketRollup]:
    """Sums per (machine, bucket). `configured[machine]` names its counters (good, reject,
    total): those sum to 0 where no row counted anything; the others stay None."""
    out: dict[tuple[str, int], BucketRollup] = {}
    if not machine_ids or not (hours or minutes):
        return out
    params = {"ids": list(machine_ids), **_arrays("m", minutes), **_arrays("h", hours)}
    if hours:
        params["h_from"] = min(p.lo for p in hours)
        params["h_to"] = max(p.hi for p in hours)
    query = "\nUNION ALL\n".join(q for q, p in ((_MINUTES, minutes), (_HOURS, hours)) if p)
    async with conn.cursor() as cur:
        await cur.execute(query, params)  # type: ignore[arg-type]
        rows = await cur.fetchall()
    # Rows grouped per (machine, bucket) first, one StateSeconds per region and one Counts per
    # bucket built at the end: the same additions in the same order as adding StateSeconds /
    # Counts row by row, without two dataclasses and a _configured copy per row (a 30-day
    # hourly series returns ~4k rows).
    grouped: dict[tuple[str, int], list[Any]] = {}
    for row in rows:
        key = (row[0], row[1])
        group = grouped.get(key)
        if group is None:
            grouped[key] = [row]
        else:
            group.append(row)
    regions = tuple(Region)  # Region(int) per row was measurable
    for key, group in grouped.items():
        by_region: dict[int, list[float]] = {}
        for row in group:
            vals = [float(x or 0.0) for x in row[3:11]]
            vals.append(int(row[11] or 0))
            prev = by_region.get(row[2])
            by_region[row[2]] = (
                vals if prev is None else [a + b for a, b in zip(prev, vals, strict=True)]
            )
        out[key] = BucketRollup(
            regions={
                regions[region]: StateSeconds(*vals[:8], int(vals[8]))
                for region, vals in by_region.items()
            },
            counts=_bucket_counts(group, configured.get(key[0], frozenset())),
        )
    asked = {p.bucket for p in (*hours, *minutes)}
    for machine_id in machine_ids:
        names = configured.get(machine_id, frozenset())
        for bucket in asked:
            if (machine_id, bucket) not in out:
                out[machine_id, bucket] = BucketRollup(counts=_configured(Counts(), names))
    return out


def _bucket_counts(rows: Sequence[Any], names: frozenset[str]) -> Counts:
    """The counts of one bucket's rows (columns 12-20), with `_configured`'s rule."""
    sums: list[Any] = [None] * 6
    flags: dict[str, int] = {}
    for row in rows:
        for k in range(3):
            x = row[12 + k]
            if x is not None:
                sums[k] = int(x) if sums[k] is None else sums[k] + int(x)
        for k in range(3, 6):
            x = row[12 + k]
            if x is not None:
                sums[k] = x if sums[k] is None else sums[k] + x
        for name, n in zip(FLAG_COLUMNS, row[18:21], strict=True):
            if n:
                flags[name] = flags.get(name, 0) + int(n)
    return _configured(Counts(*sums, flags), names)


def _configured(c: Counts, names: frozenset[str]) -> Counts:
    """Configured counters count 0 where nothing was counted; unconfigured ones stay None."""
    g, r, t = "good" in names, "reject" in names, "total" in names
    return Counts(
        (0 if c.good is None else c.good) if g else None,
        (0 if c.reject is None else c.reject) if r else None,
        (0 if c.total is None else c.total) if t else None,
        (0.0 if c.ideal_good_s is None else c.ideal_good_s) if g else None,
        (0.0 if c.ideal_reject_s is None else c.ideal_reject_s) if r else None,
        (0.0 if c.ideal_total_s is None else c.ideal_total_s) if t else None,
        c.flags,
    )
