"""Tag reads for the API: the tag list, one tag's values per time bucket, and raw pages.

Bucketed series use TimescaleDB's `time_bucket` in the calendar's time zone (so a 1-day bucket
runs from local midnight) and `last(value, time)` for the last value. Raw pages use keyset
paging on `time`: (tag_id, time) is unique in `readings`, so "time > the last one sent" joins
pages without duplicates or gaps, and every page is an index range scan however deep it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

Agg = Literal["avg", "min", "max", "last"]

_AGG_SQL: dict[str, sql.Composable] = {
    "avg": sql.SQL("avg(value)"),
    "min": sql.SQL("min(value)"),
    "max": sql.SQL("max(value)"),
    "last": sql.SQL("last(value, time)"),
}


@dataclass(frozen=True, slots=True)
class TagRow:
    id: int
    machine: str
    name: str
    signal: str
    unit: str | None
    counter: str | None
    wrap: int | None
    source: str
    protocol: str
    address: str
    active: bool


@dataclass(frozen=True, slots=True)
class BucketRow:
    start: dt.datetime
    value: float | None
    samples: int


@dataclass(frozen=True, slots=True)
class RawRow:
    time: dt.datetime
    value: float | None
    quality: int
    text: str | None


_TAG_COLUMNS = (
    "id, machine_id, name, signal, unit, counter_mode, counter_wrap, source, protocol, "
    "address, active"
)


def _tag(row: tuple[Any, ...]) -> TagRow:
    tid, machine, name, signal, unit, counter, wrap, source, protocol, address, active = row
    wrap = None if wrap is None else int(wrap)  # counter_wrap is `numeric`: a Decimal
    return TagRow(
        tid, machine, name, signal, unit, counter, wrap, source, protocol, address, active
    )


async def list_tags(conn: psycopg.AsyncConnection, *, active_only: bool = False) -> list[TagRow]:
    """Every tag, by machine and name; inactive ones (left the config) only on request."""
    where = "WHERE active" if active_only else ""
    cur = await conn.execute(f"SELECT {_TAG_COLUMNS} FROM tags {where} ORDER BY machine_id, name")
    return [_tag(r) for r in await cur.fetchall()]


async def find_tag(conn: psycopg.AsyncConnection, *, machine: str, name: str) -> TagRow | None:
    """The tag, or None; text PostgreSQL cannot hold (a NUL) names no tag."""
    if "\x00" in machine or "\x00" in name:
        return None
    cur = await conn.execute(
        f"SELECT {_TAG_COLUMNS} FROM tags WHERE machine_id = %s AND name = %s",
        (machine, name),
    )
    row = await cur.fetchone()
    return _tag(row) if row else None


async def bucketed(
    conn: psycopg.AsyncConnection,
    *,
    tag_id: int,
    start: dt.datetime,
    end: dt.datetime,
    width: dt.timedelta,
    agg: Agg,
    timezone: str = "UTC",
) -> list[BucketRow]:
    """One row per bucket holding at least one non-null value in [start, end).

    Buckets are aligned in `timezone` (TimescaleDB's default origin, local midnight for days),
    so the first bucket may start before `start`; only readings inside the window count.
    """
    if agg not in _AGG_SQL:
        raise ValueError(f"agg must be one of {sorted(_AGG_SQL)}, not {agg!r}")
    query = sql.SQL(
        "SELECT time_bucket(%(width)s, time, %(tz)s) AS bucket, {agg}, count(value) "
        "FROM readings WHERE tag_id = %(tag)s AND time >= %(start)s AND time < %(end)s "
        "AND value IS NOT NULL GROUP BY bucket ORDER BY bucket"
    ).format(agg=_AGG_SQL[agg])
    cur = await conn.execute(
        query, {"width": width, "tz": timezone, "tag": tag_id, "start": start, "end": end}
    )
    return [BucketRow(b, v, int(n)) for b, v, n in await cur.fetchall()]


async def raw_page(
    conn: psycopg.AsyncConnection,
    *,
    tag_id: int,
    start: dt.datetime,
    end: dt.datetime,
    after: dt.datetime | None,
    limit: int,
) -> list[RawRow]:
    """Up to `limit` readings in [start, end) later than `after`, oldest first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    lower = sql.SQL("time > %(after)s") if after is not None else sql.SQL("time >= %(start)s")
    query = sql.SQL(
        "SELECT time, value, quality, text_value FROM readings "
        "WHERE tag_id = %(tag)s AND {lower} AND time < %(end)s ORDER BY time LIMIT %(limit)s"
    ).format(lower=lower)
    cur = await conn.execute(
        query, {"tag": tag_id, "start": start, "end": end, "after": after, "limit": limit}
    )
    return [RawRow(t, v, int(q), text) for t, v, q, text in await cur.fetchall()]
