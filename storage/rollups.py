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

`refresh` recomputes every machine from its `covered_until` to the last whole minute before
`now`, never from before the raw retention horizon (a late reading stamped years ago must not
start a rebuild of years of minutes). It first *takes* the dirty mark in one statement (folds
`dirty_since` into `computed_until` and clears it): a batch committed after that leaves a new
mark, and a crash after it leaves `computed_until` lowered, so no mark is lost. The steps, and
why the mark is not cleared by `dirty_seq`: docs/rollups.md, "Refresh".
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field

import psycopg

from config.model import ShopfloorConfig
from config.plant import Machine
from config.settings import KpiSettings
from kpi import (
    CountStreams,
    CycleHistory,
    Interval,
    TimeClass,
    context_margin,
    plausible_max,
    state_seconds,
)
from kpi.counts import PLAUSIBLE_EXTRA, PLAUSIBLE_RATE, count_value
from storage import reason_rollups
from storage.rollup_basis import Rebuild, machine_lock, prepare
from storage.samples import (
    COUNTED_SQL,
    CounterName,
    MachineTags,
    RawInputs,
    ReasonRule,
    code_in,
    cycle_histories,
    fetch_raw_many,
    machine_tags,
    reason_categories,
    reason_rule,
    stop_runs,
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
FLAG_COLUMNS = ("counter_resets", "counter_wraps", "counter_glitches", "counts_span_unknown")
UNIT_COLUMNS = ("good_units", "reject_units", "total_units")  # migration 005
VALUE_COLUMNS = STATE_COLUMNS + COUNT_COLUMNS + FLAG_COLUMNS + UNIT_COLUMNS
COUNTERS: tuple[CounterName, ...] = ("good", "reject", "total")  # COUNT_COLUMNS' order

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


class RollupsFailed(Exception):
    """Some machines' rollups could not be recomputed (the others were)."""

    def __init__(self, failed: dict[str, str]) -> None:
        self.failed = failed
        super().__init__(
            "rollups not refreshed for " + "; ".join(f"{m}: {e}" for m, e in failed.items())
        )


@dataclass
class RefreshReport:
    """What one refresh recomputed: per machine the minute range [start, end)."""

    ranges: dict[str, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)
    minutes: int = 0
    # chunks whose count sums came from the pure core because the server's sums did not apply
    core_chunks: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # machine -> error


Row = tuple[dt.datetime, tuple[object, ...]]
# Per configured counter: minute -> (count, ideal seconds, line units); what
# CountStreams.window gives.
MinuteCounts = dict[CounterName, dict[dt.datetime, tuple[int, float, int]]]


def _minute_slices(
    intervals: Sequence[Interval], start: dt.datetime, end: dt.datetime
) -> Iterator[tuple[dt.datetime, Sequence[Interval]]]:
    """(minute, the intervals overlapping it) for each minute of [start, end)."""
    lo = 0
    minute = start
    while minute < end:
        while lo < len(intervals) and intervals[lo].end <= minute:
            lo += 1
        hi = lo
        while hi < len(intervals) and intervals[hi].start < minute + MINUTE:
            hi += 1
        yield minute, intervals[lo:hi]
        minute += MINUTE


MinuteCountValues = Callable[[dt.datetime], tuple[object, ...]]


def minute_rows(
    intervals: Sequence[Interval], start: dt.datetime, end: dt.datetime, counts: MinuteCountValues
) -> list[Row]:
    """(minute, values in VALUE_COLUMNS order) for each minute of [start, end) of the
    whole-interval timeline (intervals sorted, as built); `counts(minute)` gives the count and
    flag columns."""
    rows = []
    for minute, part in _minute_slices(intervals, start, end):
        secs = state_seconds(part, [(minute, minute + MINUTE)])
        rows.append((minute, (*(getattr(secs, c) for c in STATE_COLUMNS), *counts(minute))))
    return rows


def core_counts(streams: CountStreams) -> MinuteCountValues:
    """A minute's count and flag columns from the pure core's count events."""

    def values(minute: dt.datetime) -> tuple[object, ...]:
        counts = streams.window(minute, minute + MINUTE)
        return (
            *(getattr(counts, c) for c in COUNT_COLUMNS),
            *(counts.flags.get(c, 0) for c in FLAG_COLUMNS),
            *(getattr(counts, c) for c in UNIT_COLUMNS),
        )

    return values


def summed_counts(counts: MinuteCounts) -> MinuteCountValues:
    """A minute's count columns from sums already made per minute (server_counts: no flags)."""

    def values(minute: dt.datetime) -> tuple[object, ...]:
        got = [
            counts[name].get(minute, (0, 0.0, 0)) if name in counts else (None, None, None)
            for name in COUNTERS
        ]
        return (
            *(n for n, _, _ in got),
            *(ideal for _, ideal, _ in got),
            *(0 for _ in FLAG_COLUMNS),
            *(units for _, _, units in got),
        )

    return values


# -- count sums per minute on the server ------------------------------------------------------
#
# The server sums a chunk's counts per minute (at 1 Hz, 86,400 samples per counter and day)
# only where that is exactly what the pure core gives for the chunk's fetch (docs/rollups.md,
# "Count sums"): the core's rules come from their one definition each (COUNTED_SQL, rounding
# half to even, PLAUSIBLE_RATE and PLAUSIBLE_EXTRA), and when every step of a cumulative counter
# is a plain count the core's events are the deltas. Anything else (a reset, wrap or glitch,
# values too big to be exact in float8, a cycle change) sends the chunk to the pure core.
# Ideal seconds: count x cycle is the core's sum when the cycle is a small dyadic fraction
# (every partial sum exact); otherwise the server sends the minute's nonzero deltas in time
# order and Python adds them as the core does.

_EXACT = 2**52  # integers below this (and their differences and sums below 2**53) are exact
_DYADIC_MAX_NUMERATOR = 2**20  # cycle = m / 2**k with m below this: count x cycle is exact
_MARGIN = 1e-3  # elapsed seconds are computed apart from Python's: stay clear of the edge

# Counter k's counted readings from %({lower})s to the chunk end, rounded.
_COUNTED = (
    "SELECT time, round(value) AS v FROM readings "
    "WHERE tag_id = %(t{k})s AND time >= %({lower})s AND time < %(end)s AND " + COUNTED_SQL
)
# One part per counter (k = its index). Columns: k, minute, count, lowest delta, highest
# excess, lowest and highest value, sum of |increments| (delta counters), nonzero deltas in time
# order (when needed). A step's excess is delta - elapsed x PLAUSIBLE_RATE / the largest ideal
# cycle (%(f)s), for steps above PLAUSIBLE_EXTRA - 1 (smaller ones are always plausible): the
# step is plain while its excess stays below PLAUSIBLE_EXTRA. A cumulative counter's rows start
# at `since` (steps before the chunk decide whether the core keeps its baseline); the first
# counted sample's step comes from _FIRST_STEP_SQL.
_CUMULATIVE_PART = """
SELECT {k}, minute, sum(d), min(d),
       max(CASE WHEN d > {plain} THEN d - date_part('epoch', time - prev) * %(f)s END),
       min(v), max(v), NULL::float8, {deltas}
FROM (
    SELECT time_bucket('1 minute', time) AS minute, time, v,
           v - lag(v) OVER w AS d, lag(time) OVER w AS prev
    FROM ({counted} ORDER BY time) AS r
    WINDOW w AS (ORDER BY time)
) AS steps
GROUP BY minute
"""
_DELTA_PART = """
SELECT {k}, time_bucket('1 minute', time) AS minute, sum(v), NULL::float8, NULL::float8,
       min(v), max(v), sum(abs(v)), {deltas}
FROM ({counted}) AS r
GROUP BY 2
"""
_FIRST_STEP_SQL = f"""
SELECT q.k, b.time, b.value, f.time, f.value
FROM unnest(%(k)s::int[], %(tag)s::int[]) AS q (k, tag)
LEFT JOIN LATERAL (
    SELECT time, value
    FROM readings WHERE tag_id = q.tag AND time < %(since)s AND {COUNTED_SQL}
    ORDER BY time DESC LIMIT 1
) AS b ON true
LEFT JOIN LATERAL (
    SELECT time, value FROM readings
    WHERE tag_id = q.tag AND time >= %(since)s AND time < %(end)s AND {COUNTED_SQL}
    ORDER BY time LIMIT 1
) AS f ON true
"""


def _constant_cycle(cycles: CycleHistory, start: dt.datetime, end: dt.datetime) -> float | None:
    """The ideal cycle valid at every instant of [start, end), or None if it changes there."""
    if any(start < valid_from < end for valid_from, _ in cycles.entries):
        return None
    return cycles.at(start)


async def server_counts(
    conn: psycopg.AsyncConnection,
    tags: MachineTags,
    cycles: CycleHistory,
    since: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
) -> MinuteCounts | None:
    """Count sums per minute of [start, end) as the pure core would give them for samples
    fetched from `since` on; None when this chunk needs the core (see above)."""
    if not tags.counters:
        return {}
    cycle = _constant_cycle(cycles, start, end)
    units = cycles.units_over(start, end)
    if cycle is None or units is None:
        return None
    numerator = cycle.as_integer_ratio()[0]
    need_deltas = numerator >= _DYADIC_MAX_NUMERATOR
    largest = max(c for _, c in cycles.entries)  # plain below it is plain for any cycle
    f = PLAUSIBLE_RATE / largest
    names = list(tags.counters)
    params: dict[str, object] = {"since": since, "start": start, "end": end, "f": f}
    parts = []
    cumulative = []
    for k, name in enumerate(names):
        tag_id, mode, _ = tags.counters[name]
        params[f"t{k}"] = tag_id
        if mode == "delta":
            deltas = "array_agg(v ORDER BY time) FILTER (WHERE v <> 0)"
            part, lower = _DELTA_PART, "start"
        else:
            deltas = "array_agg(d ORDER BY time) FILTER (WHERE d <> 0)"
            part, lower = _CUMULATIVE_PART, "since"
            cumulative.append(k)
        parts.append(
            part.format(
                k=k,
                plain=PLAUSIBLE_EXTRA - 1,
                counted=_COUNTED.format(k=k, lower=lower),
                deltas=deltas if need_deltas else "NULL::float8[]",
            )
        )
    # minute -> [count, |count|, nonzero deltas] per counter
    sums: list[dict[dt.datetime, list]] = [{} for _ in names]
    async with conn.cursor() as cur:
        if cumulative:
            await cur.execute(
                _FIRST_STEP_SQL,
                {
                    "k": cumulative,
                    "tag": [tags.counters[names[k]][0] for k in cumulative],
                    "since": since,
                    "end": end,
                },
                prepare=False,
            )
            for k, t0, v0, t1, v1 in await cur.fetchall():
                a, b = count_value(v0), count_value(v1)
                if a is None or b is None:
                    continue  # no baseline before the first counted sample (it sets it), or none
                d = b - a
                plausible = plausible_max((t1 - t0).total_seconds(), cycles.fastest(t0, t1))
                if not (abs(a) < _EXACT and abs(b) < _EXACT and 0 <= d <= plausible):
                    return None
                sums[k][floor_minute(t1)] = [d, d, [d] if d else []]
        await cur.execute("\nUNION ALL\n".join(parts), params, prepare=False)
        rows = await cur.fetchall()
    for k, minute, total, low, excess, v_min, v_max, abs_sum, deltas in rows:
        if not -_EXACT < v_min <= v_max < _EXACT or (low is not None and low < 0):
            return None
        if excess is not None and not excess < PLAUSIBLE_EXTRA - _MARGIN:
            return None
        if abs_sum is not None and not abs_sum < _EXACT:
            return None
        if minute < start:
            continue  # the margin before the chunk: checked above, not stored
        got = sums[k].setdefault(minute, [0, 0, []])
        n = int(total or 0)
        got[0] += n
        got[1] += int(abs_sum) if abs_sum is not None else n
        got[2] += [int(x) for x in deltas or ()]
    out: MinuteCounts = {}
    for k, name in enumerate(names):
        per: dict[dt.datetime, tuple[int, float, int]] = {}
        for minute, (n, n_abs, deltas) in sums[k].items():
            if minute < start:
                continue
            if not need_deltas and n_abs * numerator < 2**53:
                per[minute] = (n, float(n) * cycle, n * units)  # exact: the core's sum
            elif need_deltas:
                # the core's order
                per[minute] = (n, float(sum(d * cycle for d in deltas)), n * units)
            else:
                return None
        out[name] = per
    return out


async def _start_of(
    conn: psycopg.AsyncConnection,
    machine_id: str,
    tags: MachineTags,
    margin: dt.timedelta,
    horizon: dt.datetime | None,
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
    if horizon is not None:
        start = max(start, floor_minute(horizon))
    return start


async def _store(
    conn: psycopg.AsyncConnection,
    machine_id: str,
    rows: list[Row],
    intervals: Sequence[Interval],
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    """Replace the minutes of [start, end) (and their stop time by reason, from `intervals`:
    storage.reason_rollups), redo their hours, advance computed_until: one transaction, so
    readers see either the old or the new rows."""
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
        await reason_rollups.store(cur, machine_id, intervals, start, end)
        await cur.execute(
            "UPDATE rollup_state SET computed_until = %s WHERE machine_id = %s", (end, machine_id)
        )


_STOPS = frozenset({TimeClass.DOWN, TimeClass.IDLE, TimeClass.SETUP, TimeClass.PLANNED_STOP})


async def _reexplained_from(
    conn: psycopg.AsyncConnection,
    tags: MachineTags,
    raw: RawInputs,
    intervals: Sequence[Interval],
    rule: ReasonRule,
    c0: dt.datetime,
) -> dt.datetime | None:
    """Where the stop going on at `c0` began, when a reason sample from `c0` on names another
    reason than the samples before `c0` gave it: its minutes before `c0`, stored by an earlier
    refresh, then change too (a reason entered during a stop explains all of it, kpi.timeline
    rule 3), though no reading before them changed. None when nothing before `c0` changes."""
    iv = next((iv for iv in intervals if iv.start < c0 < iv.end), None)
    if iv is None or iv.time_class not in _STOPS:
        return None
    times = [t for t, _ in raw.reasons]
    lo = max(0, bisect.bisect_right(times, iv.start) - 1)  # the reason in effect at its start
    hi = bisect.bisect_left(times, c0)
    before = next(
        (k for _, v in reversed(raw.reasons[lo:hi]) if (k := code_in(v, rule.known)) is not None),
        raw.run_reason if iv.start <= raw.since else None,
    )
    later = {code_in(v, rule.known) for t, v in raw.reasons[hi:] if t < iv.end}
    if iv.end >= raw.until:
        later.add(raw.end_reason)
    if not later - {before, None}:
        return None
    if iv.start >= raw.since:  # it began inside the samples fetched
        return iv.start
    if raw.run_start is not None:
        return raw.run_start
    value = code_in(raw.states[0][1], rule.stops) if raw.states else None
    if value is None:
        return None  # not a stop's value: a reason never explains running or unknown time
    ((run_start, _),) = await stop_runs(conn, [(tags, raw.since, float(value), rule)])
    return run_start


async def _refresh_machine(
    conn: psycopg.AsyncConnection,
    cfg: ShopfloorConfig,
    machine: Machine,
    tags: MachineTags,
    now: dt.datetime,
    report: RefreshReport,
) -> None:
    """Recompute one machine's minutes from its covered_until (or first reading) to `now`."""
    settings = cfg.settings.kpi
    margin, ctx = rollup_margin(settings), context_margin(settings)
    end = floor_minute(now)
    raw_days = cfg.settings.retention.raw_days
    horizon = now - dt.timedelta(days=raw_days) if raw_days is not None else None
    start = await _start_of(conn, machine.id, tags, margin, horizon)
    if start is None or start >= end:
        return
    reasons = reason_categories(cfg, machine)
    rules = {machine.id: reason_rule(cfg, machine)}
    cycles = (await cycle_histories(conn, [machine.id]))[machine.id]  # once, not per chunk
    states_only = MachineTags(machine.id, tags.state, tags.stop_reason)
    chunks = -(-(end - start) // CHUNK)
    c0 = start
    while c0 < end:
        c1 = min(c0 + CHUNK, end)
        until = min(c1 + ctx, now)
        counts = await server_counts(conn, tags, cycles, c0 - ctx, c0, c1)
        request = (states_only if counts is not None else tags, c0 - ctx, until)
        (raw,) = await fetch_raw_many(conn, [request], {machine.id: cycles}, rules=rules, now=now)
        intervals, streams = build(raw, machine, reasons, settings, until=until, now=now)
        if c0 == start:
            back = await _reexplained_from(conn, tags, raw, intervals, rules[machine.id], c0)
            if back is not None:
                back = floor_minute(back if horizon is None else max(back, horizon))
            if back is not None and back < c0:
                # minutes stored before c0 were classified with an explanation now replaced
                c0 = start = back
                chunks = -(-(end - start) // CHUNK)
                continue
        if counts is not None and any(lo < c1 and c0 - ctx < hi for lo, hi in streams.gaps.spans):
            # counts across a data gap are flagged (kpi.counts.Gaps), which the server's sums
            # do not do: this chunk's counts come from the core
            request = (tags, c0 - ctx, until)
            (raw,) = await fetch_raw_many(
                conn, [request], {machine.id: cycles}, rules=rules, now=now
            )
            intervals, streams = build(raw, machine, reasons, settings, until=until, now=now)
            counts = None
        if counts is not None:
            rows = minute_rows(intervals, c0, c1, summed_counts(counts))
        else:
            rows = minute_rows(intervals, c0, c1, core_counts(streams))
            report.core_chunks += 1
        await _store(conn, machine.id, rows, intervals, c0, c1)
        report.minutes += len(rows)
        if chunks > 1:
            log.info(
                "rollups %s: %s .. %s done (%d minutes), catching up to %s",
                machine.id,
                c0.isoformat(),
                c1.isoformat(),
                len(rows),
                end.isoformat(),
            )
        c0 = c1
    report.ranges[machine.id] = (start, end)
    log.debug("rollups %s: recomputed %s .. %s", machine.id, start, end)


async def refresh(
    conn: psycopg.AsyncConnection,
    cfg: ShopfloorConfig,
    *,
    now: dt.datetime,
    more: Sequence[psycopg.AsyncConnection] = (),
    only: Collection[str] | None = None,
    rebuild: Rebuild | None = None,
    wait: bool = False,
) -> RefreshReport:
    """Bring every machine's minute and hour rows up to the last whole minute before `now`.

    Needs autocommit connections: it commits per machine and chunk, so a long catch-up shows
    progress and a crash loses at most one chunk of work. `more` connections (to the same
    database) share the machines with `conn`: the server's count sums of one machine then run
    while Python builds another's timeline (a catch-up on 2 cores). `only`: these machine ids;
    `rebuild`: recompute them from further back; each machine under its lock, and recomputed
    whole when its config basis changed (storage.rollup_basis). A machine another refresh holds
    is skipped, or with `wait` waited for.
    """
    for c in (conn, *more):
        if not c.autocommit:
            raise ValueError("rollups.refresh needs autocommit connections: it commits per chunk")
    if now.utcoffset() is None:
        raise ValueError("rollups.refresh: now must be timezone-aware")
    machines = cfg.machines()
    all_tags = await machine_tags(conn)
    await conn.execute(
        "INSERT INTO rollup_state (machine_id) SELECT unnest(%s::text[]) "
        "ON CONFLICT (machine_id) DO NOTHING",
        (list(machines),),
    )
    report = RefreshReport()
    todo = [
        (machine, all_tags.get(machine_id, MachineTags(machine_id)))
        for machine_id, (_, machine) in machines.items()
        if only is None or machine_id in only
    ]
    if only is not None and set(only) - set(machines):
        raise ValueError(f"rollups.refresh: no such machine {sorted(set(only) - set(machines))}")
    todo.reverse()  # popped from the end: config order

    first_error: list[Exception] = []

    async def worker(c: psycopg.AsyncConnection) -> None:
        while todo:
            machine, tags = todo.pop()
            try:
                async with machine_lock(c, machine.id, wait=wait) as held:
                    if not held:  # another refresh has it: its dirty mark waits for the next run
                        log.debug("rollups %s: refreshed elsewhere right now; skipped", machine.id)
                        continue
                    await prepare(c, cfg, machine, tags, rebuild)
                    await _refresh_machine(c, cfg, machine, tags, now, report)
            except (psycopg.OperationalError, OSError):
                raise  # the connection is gone: so is this refresh
            except Exception as exc:  # this machine's data or a bug: the others go on
                report.failed[machine.id] = f"{type(exc).__name__}: {exc}"
                first_error.append(exc)

    try:
        async with asyncio.TaskGroup() as group:
            for c in (conn, *more):
                group.create_task(worker(c))
    except ExceptionGroup as group_error:  # a lost connection: raised as itself
        raise group_error.exceptions[0] from None
    if report.failed:
        raise RollupsFailed(report.failed) from first_error[0]
    return report


async def late_marks(conn: psycopg.AsyncConnection) -> dict[str, int]:
    """`rollup_state.late_seq` per machine: it moves when a batch brings the machine KPI
    readings older than storage.writer.LATE_AFTER_S (migration 004); the API's result cache
    keeps answers for past windows until it does."""
    cur = await conn.execute("SELECT machine_id, late_seq FROM rollup_state")
    return {str(m): int(seq) for m, seq in await cur.fetchall()}
