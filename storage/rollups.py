"""Per-machine minute and hour rollups (migration 002), kept exact under late data.

A minute row holds what the pure core says about that minute of the machine's whole-interval
timeline: `state_seconds` per class and `CountStreams.window` sums. So Σ minute rows over whole
minutes equals the raw computation over the same minutes, and the KPI engine reads rollups for
whole minutes and raw samples only at the edges. An hour row is the sum of its minute rows.

Which rows are exact (one place for the margin logic, `rollup_margin`):

    covered_until = floor_minute(min(computed_until, dirty_since) - margin)
    margin        = short_stop_s + max_gap_s

- `computed_until` is where the last refresh stopped (the last whole minute before its `now`).
  The last `margin` before it may still change without new data: a stop in progress at that
  `now` was classified by its length so far (docs/kpi.md "Edges").
- `dirty_since` is lowered by the batch writer, in the transaction that stores the readings, to
  the earliest reading time of each machine in the batch. Readings at t change the
  classification of intervals from t - short_stop_s on, and no earlier.

`refresh` recomputes every machine from its `covered_until` (its first reading on the first
run) to the last whole minute before `now`. It first *takes* the dirty mark in one statement
(folds `dirty_since` into `computed_until` and clears it): a batch committed before that is
visible to the reads that follow; one committed after leaves a new mark for the next refresh.
A crash after the take leaves `computed_until` lowered, so nothing is lost. (Clearing the mark
only when `dirty_seq` is unchanged, as the SQL comment first planned, never clears it while a
collector writes every 250 ms; `dirty_seq` stays as a write counter.)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from config.model import ShopfloorConfig
from config.settings import KpiSettings
from storage.kpi import CountStreams, Interval, context_margin, state_seconds
from storage.samples import (
    MachineTags,
    cycle_histories,
    fetch_raw_many,
    machine_tags,
    reason_categories,
)
from storage.samples import timeline_and_counts as build

log = logging.getLogger(__name__)

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
CHUNK = dt.timedelta(days=1)  # memory bound and progress unit of a long catch-up

STATE_COLUMNS = (
    "running_s",
    "short_stop_s",
    "down_s",
    "idle_s",
    "setup_s",
    "planned_stop_s",
    "unknown_s",
    "unmapped_s",
    "down_starts",
)
COUNT_COLUMNS = ("good", "reject", "total", "ideal_good_s", "ideal_reject_s", "ideal_total_s")
FLAG_COLUMNS = ("counter_resets", "counter_wraps", "counter_glitches")
VALUE_COLUMNS = STATE_COLUMNS + COUNT_COLUMNS + FLAG_COLUMNS

_HOURS_SQL = f"""
INSERT INTO machine_hours (machine_id, hour, {", ".join(VALUE_COLUMNS)})
SELECT machine_id, date_trunc('hour', minute, 'UTC'), {", ".join(f"sum({c})" for c in VALUE_COLUMNS)}
FROM machine_minutes
WHERE machine_id = %(machine)s AND minute >= %(start)s AND minute < %(end)s
GROUP BY machine_id, date_trunc('hour', minute, 'UTC')
ON CONFLICT (machine_id, hour) DO UPDATE SET
{", ".join(f"{c} = EXCLUDED.{c}" for c in VALUE_COLUMNS)}
"""

# Fold the dirty mark into computed_until and clear it, atomically (see module docstring).
_TAKE_SQL = """
UPDATE rollup_state SET
    computed_until = CASE WHEN computed_until IS NULL THEN NULL
                          ELSE LEAST(computed_until, date_trunc('minute', dirty_since, 'UTC')) END,
    dirty_since = NULL
WHERE machine_id = %s
RETURNING computed_until
"""

_FIRST_READING_SQL = """
SELECT min(f.time) FROM unnest(%s::int[]) AS t (id)
CROSS JOIN LATERAL (SELECT time FROM readings WHERE tag_id = t.id ORDER BY time LIMIT 1) f
"""


def rollup_margin(settings: KpiSettings) -> dt.timedelta:
    """How far before new data (or before the last refresh's end) minute rows may change."""
    return dt.timedelta(seconds=settings.short_stop_s + settings.max_gap_s)


def floor_minute(t: dt.datetime) -> dt.datetime:
    """Start of the UTC minute holding t (UTC, so every zone's minutes line up)."""
    t = t.astimezone(dt.UTC)
    return t.replace(second=0, microsecond=0)


def floor_hour(t: dt.datetime) -> dt.datetime:
    return floor_minute(t).replace(minute=0)


def _covered(
    computed_until: dt.datetime | None, dirty_since: dt.datetime | None, margin: dt.timedelta
) -> dt.datetime | None:
    if computed_until is None:
        return None
    low = computed_until if dirty_since is None else min(computed_until, dirty_since)
    return floor_minute(low - margin)


async def covered_until(
    conn: psycopg.AsyncConnection, machine_ids: Sequence[str], *, kpi: KpiSettings
) -> dict[str, dt.datetime | None]:
    """Per machine: rollup rows of every minute before this instant are exact (equal to the raw
    computation); None: no rollups yet. `kpi` must be the settings the rollups were built with."""
    margin = rollup_margin(kpi)
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT machine_id, computed_until, dirty_since FROM rollup_state "
            "WHERE machine_id = ANY(%s)",
            (list(machine_ids),),
        )
        found = {m: _covered(cu, ds, margin) for m, cu, ds in await cur.fetchall()}
    return {m: found.get(m) for m in machine_ids}


@dataclass
class RefreshReport:
    """What one refresh recomputed: per machine the minute range [start, end)."""

    ranges: dict[str, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)
    minutes: int = 0


def minute_values(
    intervals: Sequence[Interval], streams: CountStreams, minute: dt.datetime
) -> tuple[object, ...]:
    """One minute row's values (VALUE_COLUMNS order) from the whole-interval timeline."""
    end = minute + MINUTE
    secs = state_seconds(intervals, [(minute, end)])
    counts = streams.window(minute, end)
    return (
        *(getattr(secs, c) for c in STATE_COLUMNS),
        *(getattr(counts, c) for c in COUNT_COLUMNS),
        *(counts.flags.get(c, 0) for c in FLAG_COLUMNS),
    )


def minute_rows(
    intervals: Sequence[Interval],
    streams: CountStreams,
    start: dt.datetime,
    end: dt.datetime,
) -> list[tuple[dt.datetime, tuple[object, ...]]]:
    """(minute, values) for each minute of [start, end); intervals sorted, as built."""
    rows = []
    lo = 0
    minute = start
    while minute < end:
        while lo < len(intervals) and intervals[lo].end <= minute:
            lo += 1
        hi = lo
        while hi < len(intervals) and intervals[hi].start < minute + MINUTE:
            hi += 1
        rows.append((minute, minute_values(intervals[lo:hi], streams, minute)))
        minute += MINUTE
    return rows


async def _start_of(
    conn: psycopg.AsyncConnection, machine_id: str, tags: MachineTags, margin: dt.timedelta
) -> dt.datetime | None:
    """Take the dirty mark; where this machine's recomputation starts (None: no data yet)."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(_TAKE_SQL, (machine_id,))
        row = await cur.fetchone()
    computed_until = row[0] if row else None
    first = None
    if tags.tag_ids:
        async with conn.cursor() as cur:
            await cur.execute(_FIRST_READING_SQL, (tags.tag_ids,))
            first = (await cur.fetchone() or (None,))[0]
    if first is None:
        return None
    # Never before the first reading kept: older rows came from raw that retention dropped.
    start = floor_minute(first)
    if computed_until is not None:
        start = max(start, floor_minute(computed_until - margin))
    return start


async def _store(
    conn: psycopg.AsyncConnection,
    machine_id: str,
    rows: list[tuple[dt.datetime, tuple[object, ...]]],
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    """Replace the minutes of [start, end), redo their hours, advance computed_until: one
    transaction, so readers see either the old or the new rows."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            "DELETE FROM machine_minutes WHERE machine_id = %s AND minute >= %s AND minute < %s",
            (machine_id, start, end),
        )
        columns = ", ".join(("machine_id", "minute", *VALUE_COLUMNS))
        async with cur.copy(f"COPY machine_minutes ({columns}) FROM STDIN") as cp:
            for minute, values in rows:
                await cp.write_row((machine_id, minute, *values))
        await cur.execute(
            _HOURS_SQL,
            {
                "machine": machine_id,
                "start": floor_hour(start),
                "end": floor_hour(end - MINUTE) + HOUR,
            },
        )
        await cur.execute(
            "UPDATE rollup_state SET computed_until = %s WHERE machine_id = %s", (end, machine_id)
        )


async def refresh(
    conn: psycopg.AsyncConnection, cfg: ShopfloorConfig, *, now: dt.datetime
) -> RefreshReport:
    """Bring every machine's minute and hour rows up to the last whole minute before `now`.

    Needs an autocommit connection: it commits per machine and chunk, so a long catch-up
    shows progress and a crash loses at most one chunk of work.
    """
    if not conn.autocommit:
        raise ValueError("rollups.refresh needs an autocommit connection: it commits per chunk")
    if now.utcoffset() is None:
        raise ValueError("rollups.refresh: now must be timezone-aware")
    settings = cfg.settings.kpi
    margin, ctx = rollup_margin(settings), context_margin(settings)
    end = floor_minute(now)
    machines = cfg.machines()
    all_tags = await machine_tags(conn)
    await conn.execute(
        "INSERT INTO rollup_state (machine_id) SELECT unnest(%s::text[]) "
        "ON CONFLICT (machine_id) DO NOTHING",
        (list(machines),),
    )
    report = RefreshReport()
    for machine_id, (_, machine) in machines.items():
        tags = all_tags.get(machine_id, MachineTags(machine_id))
        start = await _start_of(conn, machine_id, tags, margin)
        if start is None or start >= end:
            continue
        reasons = reason_categories(cfg, machine)
        cycles = await cycle_histories(conn, [machine_id])  # once, not per chunk
        chunks = -(-(end - start) // CHUNK)
        c0 = start
        while c0 < end:
            c1 = min(c0 + CHUNK, end)
            until = min(c1 + ctx, now)
            (raw,) = await fetch_raw_many(conn, [(tags, c0 - ctx, until)], cycles)
            intervals, streams = build(raw, machine, reasons, settings, until=until, now=now)
            rows = minute_rows(intervals, streams, c0, c1)
            await _store(conn, machine_id, rows, c0, c1)
            report.minutes += len(rows)
            if chunks > 1:
                log.info(
                    "rollups %s: %s .. %s done (%d minutes), catching up to %s",
                    machine_id,
                    c0.isoformat(),
                    c1.isoformat(),
                    len(rows),
                    end.isoformat(),
                )
            c0 = c1
        report.ranges[machine_id] = (start, end)
        log.debug("rollups %s: recomputed %s .. %s", machine_id, start, end)
    return report
