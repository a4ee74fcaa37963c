"""Sums of rollup rows (migration 002) per machine and bucket, split by region, in one query.

The pieces (storage.engine.windows.Pieces) go to the server as arrays; it sums them per
(machine, bucket), each region's class seconds in columns of their own, and `bucket_sums` turns
each row into the bucket's `Sums` without grouping anything in Python (docs/engine.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg

from config.settings import KpiSettings
from kpi import Counts, StateSeconds, Sums, TimeSums, time_elements
from kpi.spans import Span
from storage import rollups
from storage.engine.windows import MINUTE, PieceColumns, Pieces, Region, ceil_to, floor_to
from storage.rollups import COUNT_COLUMNS, FLAG_COLUMNS, STATE_COLUMNS, UNIT_COLUMNS

_INTEGERS = frozenset({"down_starts", "good", "reject", "total", *FLAG_COLUMNS, *UNIT_COLUMNS})


def _f8(column: str, table: str) -> str:
    """A column as float8: integer columns too, see _OUTER."""
    return f"{table}.{column}" + ("::float8" if column in _INTEGERS else "")


_COUNTED = (*COUNT_COLUMNS, *FLAG_COLUMNS, *UNIT_COLUMNS)  # what a bucket counts
_VALUES = (*STATE_COLUMNS, *_COUNTED)
_INNER_STATES = ", ".join(f"sum({_f8(c, 'r')}) AS {c}" for c in STATE_COLUMNS)
_INNER_ALL = ", ".join(f"sum({_f8(c, 'r')}) AS {c}" for c in _VALUES)
_NO_COUNTS = ", ".join("NULL::float8" for _ in _COUNTED)
_X_STATES = ", ".join(f"x.{c}" for c in STATE_COLUMNS)
_X_ALL = ", ".join(f"x.{c}" for c in _VALUES)
_HOUR_ALL = ", ".join(_f8(c, "x") for c in _VALUES)

# Minute pieces: each piece's sums in a LATERAL subquery with its own GROUP BY, one index range
# scan each (docs/engine.md). Pieces of hours cut by a region edge (`split`) sum the class
# seconds only: their hour row counts.
_MINUTES = """
SELECT x.machine_id, p.bucket, {region} AS region, {cols}
FROM unnest(%({k}_lo)b::timestamptz[], %({k}_hi)b::timestamptz[], %({k}_region)b::int[],
            %({k}_bucket)b::int[]) AS p (lo, hi, region, bucket)
CROSS JOIN LATERAL (
    SELECT r.machine_id, {inner}
    FROM machine_minutes r
    WHERE r.machine_id = ANY(%({ids})s) AND r.minute >= p.lo AND r.minute < p.hi
    GROUP BY r.machine_id
) AS x
"""
# A piece of a machine whose class seconds are not asked for (`time_ids`) is only counted
# (region NULL): its class seconds come back NULL, less to send and to parse.
_REGION = "CASE WHEN x.machine_id = ANY(%(time_ids)s) THEN p.region END"
_SPLIT_SQL = _MINUTES.format(
    k="s", ids="time_ids", region="p.region", cols=f"{_X_STATES}, {_NO_COUNTS}", inner=_INNER_STATES
)
_MINUTES_SQL = _MINUTES.format(k="m", ids="ids", region=_REGION, cols=_X_ALL, inner=_INNER_ALL)

# Hour rows: one range scan over all the pieces' hours (plain-parameter bounds: chunks excluded
# at plan time), hash-joined to the pieces' hours (docs/engine.md).
_HOURS_SQL = f"""
SELECT x.machine_id, p.bucket, {_REGION} AS region, {_HOUR_ALL}
FROM unnest(%(h_lo)b::timestamptz[], %(h_hi)b::timestamptz[], %(h_region)b::int[],
            %(h_bucket)b::int[]) AS p (lo, hi, region, bucket)
CROSS JOIN LATERAL generate_series(p.lo, p.hi - interval '1 hour', interval '1 hour') AS g (hour)
JOIN machine_hours x ON x.hour = g.hour
WHERE x.machine_id = ANY(%(ids)s) AND x.hour >= %(h_from)s AND x.hour < %(h_to)s
"""


# Per machine, its first minute row in [lo, hi): rows start at the machine's first reading
# (storage.rollups) and run on without a gap to its covered_until, so a machine whose first row
# here is after lo has none before it, and one without a row here has none in [lo, hi). One
# index probe per machine (ordered by minute, LIMIT 1), the bounds as plain parameters so
# chunks are excluded at plan time.
_FIRST_SQL = """
SELECT m.id, f.minute
FROM unnest(%(ids)s::text[]) AS m (id)
CROSS JOIN LATERAL (
    SELECT r.minute FROM machine_minutes r
    WHERE r.machine_id = m.id AND r.minute >= %(lo)s AND r.minute < %(hi)s
    ORDER BY r.minute LIMIT 1
) AS f
"""


async def first_minutes(
    conn: psycopg.AsyncConnection,
    machine_ids: Sequence[str],
    lo: dt.datetime,
    hi: dt.datetime,
) -> dict[str, dt.datetime | None]:
    """Per machine: where its rollup rows in [lo, hi) (lo, hi <= its covered_until) start,
    None when it has none there. Before that the window has no rows of it to sum (before its
    first reading): the engine reads that part raw, as the raw-only path does."""
    async with conn.cursor() as cur:
        await cur.execute(_FIRST_SQL, {"ids": list(machine_ids), "lo": lo, "hi": hi})
        found: dict[str, dt.datetime] = dict(await cur.fetchall())
    return {m: found.get(m) for m in machine_ids}


async def rollup_spans(
    conn: psycopg.AsyncConnection,
    kpi: KpiSettings,
    machine_ids: Sequence[str],
    s: dt.datetime,
    e: dt.datetime,
) -> tuple[Span | None, dict[str, Span]]:
    """The window's rollup span [lo, hi) (whole minutes before every machine's covered_until;
    None: none) and each machine's part of it: from its first minute row on (rows start at its
    first reading; before that the window is read raw, as raw-only does). The same rule as the
    KPIs' and the downtime's (storage.engine.sums, storage.engine.downtime; docs/engine.md
    "Where the figures come from")."""
    covered = await rollups.covered_until(conn, list(machine_ids), kpi=kpi)
    found = [covered.get(m) for m in machine_ids]
    if not found or any(c is None for c in found):
        return None, {}
    c = min(t for t in found if t is not None)
    lo, hi = ceil_to(s, MINUTE), min(floor_to(e, MINUTE), floor_to(c, MINUTE))
    if lo >= hi:
        return None, {}
    first = await first_minutes(conn, machine_ids, lo, hi)
    parts = {m: (f, hi) for m, f in first.items() if f is not None and f < hi}
    return ((lo, hi), parts) if parts else (None, {})


def _in(region: Region, column: str) -> str:
    return f"sum({column}) FILTER (WHERE region = {int(region)})"


# Per (machine, bucket): the productive region's class seconds, running_s and unmapped_s of
# breaks and outside (the only ones time_elements reads there: KPI.md, a break is planned stop
# whatever the machine does; outside every shift only running counts), counts and counter
# flags (region NULL: an hour row that only counts).
# Integer columns are summed as float8 and cast back at the end: exact (integers below 2^53),
# and faster than sum(bigint), which is numeric (docs/engine.md).
_OUTER = ", ".join(
    [
        *(_in(Region.PRODUCTIVE, c) for c in STATE_COLUMNS[:-1]),
        f"({_in(Region.PRODUCTIVE, 'down_starts')})::int",
        *(_in(r, c) for r in (Region.BREAK, Region.OUTSIDE) for c in ("running_s", "unmapped_s")),
        *(f"sum({c})::bigint" for c in COUNT_COLUMNS[:3]),
        *(f"sum({c})" for c in COUNT_COLUMNS[3:]),
        *(f"sum({c})::int" for c in FLAG_COLUMNS),
        *(f"sum({c})::bigint" for c in UNIT_COLUMNS),
    ]
)
# In bucket order: the engine turns each bucket into KPIs as soon as its rows are in.
_OUTER_SQL = (
    "SELECT machine_id, bucket, " + _OUTER + " FROM (\n{parts}\n) AS u GROUP BY 1, 2 ORDER BY 2"
)


def _arrays(prefix: str, cols: PieceColumns) -> dict[str, list[Any]]:
    return {f"{prefix}_{name}": getattr(cols, name) for name in ("lo", "hi", "region", "bucket")}


_ZERO = StateSeconds()
Row = tuple[Any, ...]
NO_ROWS: Row = (None,) * 28  # a (machine, bucket) without rollup rows


async def rollup_rows(
    conn: psycopg.AsyncConnection,
    machine_ids: Sequence[str],
    pieces: Pieces,
    *,
    time_ids: Sequence[str] | None = None,
) -> AsyncIterator[list[Row]]:
    """One row per (machine, bucket) that has rollup rows, in bucket order: (machine_id,
    bucket, then the sums `bucket_sums` reads), in slices of 100 rows. Rows are made a slice
    at a time as they are read (the result is fetched whole anyway): fewer live objects than
    a fetchall() list, fewer garbage collector passes.

    `time_ids` (default: all): the machines whose class seconds are read. The others' rows
    carry counts only (class seconds NULL), and the minutes of their hours cut by a region edge,
    the statement's largest read, are not read: for callers that read only their counts."""
    parts = []
    params: dict[str, Any] = {
        "ids": list(machine_ids),
        "time_ids": list(machine_ids if time_ids is None else time_ids),
    }
    for sql, key, cols in (
        (_HOURS_SQL, "h", pieces.hours),
        (_MINUTES_SQL, "m", pieces.minutes),
        (_SPLIT_SQL, "s", pieces.split),
    ):
        if key == "s" and not params["time_ids"]:
            continue
        if len(cols):
            parts.append(sql)
            params.update(_arrays(key, cols))
    if not machine_ids or not parts:
        return
    if len(pieces.hours):
        params["h_from"] = min(pieces.hours.lo)
        params["h_to"] = max(pieces.hours.hi)
    query = _OUTER_SQL.format(parts="UNION ALL".join(parts))
    async with conn.cursor(binary=True) as cur:  # binary: floats and arrays parse faster
        await cur.execute(query, params)
        # in slices: a row at a time (through `async for` here and in the caller) cost more
        # per row (docs/engine.md)
        while rows := await cur.fetchmany(100):
            yield rows


def bucket_sums(
    row: Row,
    configured: frozenset[str],
    *,
    planned_time_s: float,
    break_s: float,
    calendar_missing: bool,
) -> Sums:
    """One machine's sums in one bucket from its row (or NO_ROWS). `configured` names the
    machine's counters (good, reject, total): those sum to 0 where no row counted anything;
    the others stay None."""
    state = StateSeconds
    productive = state(
        row[2] or 0.0,  # running_s
        row[3] or 0.0,  # short_stop_s
        row[4] or 0.0,  # down_s
        row[5] or 0.0,  # idle_s
        row[6] or 0.0,  # setup_s
        row[7] or 0.0,  # planned_stop_s
        row[8] or 0.0,  # unknown_s
        row[9] or 0.0,  # unmapped_s
        row[10] or 0,  # down_starts
    )
    b_run, o_run = row[11], row[13]
    in_breaks = _ZERO if b_run is None else state(b_run, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, row[12], 0)
    outside = _ZERO if o_run is None else state(o_run, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, row[14], 0)
    times = time_elements(
        productive,
        in_breaks,
        outside,
        planned_time_s=planned_time_s,
        break_s=break_s,
        calendar_missing=calendar_missing,
    )
    return Sums(times, _counts(row, configured))


def bucket_counts(row: Row, configured: frozenset[str], times: TimeSums) -> Sums:
    """One machine's counts in one bucket from its row (or NO_ROWS), with `times` (zero times
    carrying the flags full sums would carry) instead of its time elements."""
    return Sums(times, _counts(row, configured))


def _counts(row: Row, names: frozenset[str]) -> Counts:
    """Counts from columns 15-27 (COUNT_COLUMNS, FLAG_COLUMNS, UNIT_COLUMNS); configured
    counters count 0 where nothing was counted, unconfigured ones stay None."""
    good, reject, total, i_good, i_reject, i_total = row[15:21]
    flags = row[21:25]
    u_good, u_reject, u_total = row[25:28]
    g, r, t = "good" in names, "reject" in names, "total" in names
    return Counts(
        (good or 0) if g else None,
        (reject or 0) if r else None,
        (total or 0) if t else None,
        (0.0 if i_good is None else i_good) if g else None,
        (0.0 if i_reject is None else i_reject) if r else None,
        (0.0 if i_total is None else i_total) if t else None,
        {n: k for n, k in zip(FLAG_COLUMNS, flags, strict=True) if k} if any(flags) else {},
        (u_good or 0) if g else None,
        (u_reject or 0) if r else None,
        (u_total or 0) if t else None,
    )
