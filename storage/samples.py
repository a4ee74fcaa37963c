"""Raw samples of one machine from the database, shaped for the pure KPI core (kpi).

Both the rollup writer (storage.rollups) and the KPI engine's raw edges read samples through
here, so the two see the same inputs and run the same pipeline: the sums of rollup minutes
then equal what the raw timeline gives for the same minutes.

Quality: a reading whose quality is Bad (2, or any negative number: the top 16 bits of an OPC
UA Bad StatusCode, see docs/adapters/opcua.md) becomes a null sample, whatever value it carries;
Good (0) and Uncertain (1) readings keep their value. `BAD_QUALITY_SQL` is that rule's one
definition; every statement that reads readings as samples (here, storage.rollups) is built
from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import psycopg

from config.model import ShopfloorConfig
from config.plant import Machine, ReasonCategory
from config.settings import KpiSettings
from kpi import (
    CountEvent,
    CountStreams,
    CycleHistory,
    Interval,
    build_timeline,
    cumulative_deltas,
    increments,
)

log = logging.getLogger(__name__)

Sample = tuple[dt.datetime, float | None]
CounterName = Literal["good", "reject", "total"]
CounterMode = Literal["cumulative", "delta"]

COUNTER_OF_SIGNAL: dict[str, CounterName] = {
    "good_count": "good",
    "reject_count": "reject",
    "total_count": "total",
}

# Bad: 2 or negative (adapters.base.Quality, docs/adapters/opcua.md "Quality").
BAD_QUALITY_SQL = "(quality = 2 OR quality < 0)"
# A reading's value as a sample: none when its quality is Bad.
VALUE_SQL = f"CASE WHEN {BAD_QUALITY_SQL} THEN NULL ELSE value END"
# The readings a counter counts: a finite value of a quality not Bad (kpi.counts.count_value).
COUNTED_SQL = (
    f"NOT {BAD_QUALITY_SQL} AND value IS NOT NULL AND value NOT IN ('NaN', 'Infinity', '-Infinity')"
)


@dataclass(frozen=True)
class MachineTags:
    """Tag ids of one machine by signal, from the DB `tags` table (active tags only)."""

    machine_id: str
    state: int | None = None
    stop_reason: int | None = None
    # counter -> (tag_id, mode, wrap)
    counters: dict[CounterName, tuple[int, CounterMode, int | None]] = field(default_factory=dict)

    @property
    def tag_ids(self) -> list[int]:
        ids = [self.state, self.stop_reason, *(c[0] for c in self.counters.values())]
        return [i for i in ids if i is not None]


async def machine_tags(conn: psycopg.AsyncConnection) -> dict[str, MachineTags]:
    """Active KPI tags per machine id. Several tags of one signal on one machine: the lowest id
    is used and a warning names the others (the config loader should prevent this)."""
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT machine_id, signal, id, counter_mode, counter_wrap FROM tags "
            "WHERE active AND signal <> 'measurement' ORDER BY machine_id, signal, id"
        )
        rows = await cur.fetchall()
    found: dict[str, MachineTags] = {}
    for machine_id, signal, tag_id, mode, wrap in rows:
        tags = found.setdefault(machine_id, MachineTags(machine_id))
        if signal in ("state", "stop_reason"):
            slot_taken = getattr(tags, signal) is not None
            if not slot_taken:
                found[machine_id] = replace(tags, **{signal: tag_id})
        else:
            name = COUNTER_OF_SIGNAL[signal]
            slot_taken = name in tags.counters
            if not slot_taken:
                if mode not in ("cumulative", "delta"):
                    raise ValueError(
                        f"tags.id {tag_id} ({machine_id} {signal}): counter_mode {mode!r} is "
                        "neither 'cumulative' nor 'delta'"
                    )
                tags.counters[name] = (tag_id, mode, int(wrap) if wrap is not None else None)
        if slot_taken:
            log.warning(
                "machine %s has several active %s tags; using the lowest id, ignoring tag %d",
                machine_id,
                signal,
                tag_id,
            )
    return found


@dataclass(frozen=True)
class RawInputs:
    """What the pure core needs for one machine over [since, until).

    Each sample list holds the samples in [since, until) plus the last one before `since` (the
    state in effect, the reason in effect, the counters' baselines).
    """

    since: dt.datetime
    until: dt.datetime
    states: list[Sample]
    reasons: list[Sample]
    counters: dict[CounterName, list[Sample]]
    cycles: CycleHistory
    # counter -> (mode, wrap), from the tags; a counter missing here is cumulative, no wrap
    counter_modes: dict[CounterName, tuple[CounterMode, int | None]] = field(default_factory=dict)


# Every signal of every request in one statement (docs/engine.md, "Round trips per request are
# fixed"): per signal the last sample before `since` (a LATERAL LIMIT 1), then per distinct
# [since, until) one range scan over all its tags with the bounds as plain parameters, so the
# planner excludes chunks. Rows of the range scans come as (-1 - span index, tag, time, value).
_BEFORE_SQL = f"""
SELECT q.i, q.tag, r.time, r.value
FROM unnest(%(i)s::int[], %(tag)s::int[], %(since)s::timestamptz[]) AS q (i, tag, since)
CROSS JOIN LATERAL (
    SELECT time, {VALUE_SQL} AS value FROM readings
    WHERE tag_id = q.tag AND time < q.since ORDER BY time DESC LIMIT 1
) AS r
"""
_SPAN_SQL = (
    "SELECT {k}, tag_id, time, " + VALUE_SQL + " FROM readings WHERE tag_id = ANY(%(t{n})s) "
    "AND time >= %(s{n})s AND time < %(u{n})s"
)


def _raw_query(
    slots: list[tuple[int, dt.datetime, dt.datetime]],
) -> tuple[str, dict[str, object], dict[tuple[int, int], list[int]]]:
    """The statement for slots (tag, since, until), its parameters, and which slots each
    (span index, tag) of the range scans feeds."""
    params: dict[str, object] = {
        "i": list(range(len(slots))),
        "tag": [t for t, _, _ in slots],
        "since": [s for _, s, _ in slots],
    }
    spans: dict[tuple[dt.datetime, dt.datetime], int] = {}
    feeds: dict[tuple[int, int], list[int]] = {}
    tags: list[list[int]] = []
    for slot, (tag, since, until) in enumerate(slots):
        if since >= until:
            continue
        k = spans.setdefault((since, until), len(spans))
        if k == len(tags):
            tags.append([])
        if (k, tag) not in feeds:
            tags[k].append(tag)
        feeds.setdefault((k, tag), []).append(slot)
    parts = [_BEFORE_SQL]
    for (since, until), k in spans.items():
        parts.append(_SPAN_SQL.format(k=-1 - k, n=k))
        params.update({f"t{k}": tags[k], f"s{k}": since, f"u{k}": until})
    return "\nUNION ALL\n".join(parts), params, feeds


_CYCLES_SQL = (
    "SELECT machine_id, valid_from, ideal_cycle_s FROM machine_ideal_cycles "
    "WHERE machine_id = ANY(%s) ORDER BY machine_id, valid_from"
)


async def cycle_histories(
    conn: psycopg.AsyncConnection, machine_ids: list[str]
) -> dict[str, CycleHistory]:
    """Ideal cycle histories of the machines; a machine without a row is an error (the plant
    was not synced)."""
    async with conn.cursor() as cur:
        await cur.execute(_CYCLES_SQL, (sorted(set(machine_ids)),))
        rows = await cur.fetchall()
    found: dict[str, list[tuple[dt.datetime, float]]] = {}
    for machine_id, valid_from, cycle in rows:
        found.setdefault(machine_id, []).append((valid_from, float(cycle)))
    for machine_id in machine_ids:
        if machine_id not in found:
            raise ValueError(
                f"machine {machine_id!r} has no row in machine_ideal_cycles: sync the plant first"
            )
    return {m: CycleHistory(tuple(e)) for m, e in found.items()}


_time = operator.itemgetter(0)  # a sample's time (a C function: called per sample)


RawRequest = tuple[MachineTags, dt.datetime, dt.datetime]  # (tags, since, until)


def _check(tags: MachineTags, since: dt.datetime, until: dt.datetime) -> None:
    if since.utcoffset() is None or until.utcoffset() is None:
        raise ValueError(f"raw samples of {tags.machine_id}: since/until must be timezone-aware")
    if until < since:
        raise ValueError(f"raw samples of {tags.machine_id}: until {until} is before since {since}")


async def fetch_raw_many(
    conn: psycopg.AsyncConnection,
    requests: list[RawRequest],
    cycles: dict[str, CycleHistory] | None = None,
) -> list[RawInputs]:
    """Each machine's samples in [since, until), each signal with its last sample before, for
    several (machine, span) requests at once: one query for all samples, one for the cycle
    histories (unless given), whatever the number of requests."""
    for tags, since, until in requests:
        _check(tags, since, until)
    if not requests:
        return []
    # One slot per (request, signal) with a tag; `signals[request]` = [(signal name, slot)].
    signals: list[list[tuple[str, int]]] = []
    slots: list[tuple[int, dt.datetime, dt.datetime]] = []
    for tags, since, until in requests:
        wanted = [("state", tags.state), ("reason", tags.stop_reason)]
        wanted += [(name, tag_id) for name, (tag_id, _, _) in tags.counters.items()]
        mine = []
        for name, tag_id in wanted:
            if tag_id is not None:
                mine.append((name, len(slots)))
                slots.append((tag_id, since, until))
        signals.append(mine)
    if cycles is None:
        cycles = await cycle_histories(conn, [t.machine_id for t, _, _ in requests])
    found: list[list[Sample]] = [[] for _ in slots]
    if slots:
        query, params, feeds = _raw_query(slots)
        # (row key, tag) -> the sample lists it feeds, looked up once per row
        sinks = {(-1 - k, tag): [found[s] for s in fed] for (k, tag), fed in feeds.items()}
        # binary: timestamps parse faster so (a week of state samples is many rows)
        async with conn.cursor(binary=True) as cur:
            # Not prepared: a cached generic plan would lose the plan-time chunk exclusion.
            await cur.execute(query, params, prepare=False)
            for k, tag, t, v in await cur.fetchall():
                if k >= 0:
                    found[k].append((t, v))
                else:
                    for sink in sinks[k, tag]:
                        sink.append((t, v))
    out = []
    for (tags, since, until), named in zip(requests, signals, strict=True):
        # Sorted runs (the index order) sort in O(n); the SQL does not promise an order.
        got = {name: sorted(found[slot], key=_time) for name, slot in named}
        out.append(
            RawInputs(
                since=since,
                until=until,
                states=got.get("state", []),
                reasons=got.get("reason", []),
                counters={name: got[name] for name in tags.counters},
                cycles=cycles[tags.machine_id],
                counter_modes={name: (m, w) for name, (_, m, w) in tags.counters.items()},
            )
        )
    return out


def reason_categories(cfg: ShopfloorConfig, machine: Machine) -> dict[int, ReasonCategory]:
    """The stop reasons that explain this machine's stops: the ones it lists, or, when it lists
    none, every reason of the plant. Rollups and raw edges must use the same mapping."""
    allowed = None if machine.stop_reasons is None else set(machine.stop_reasons)
    return {r.code: r.category for r in cfg.stop_reasons if allowed is None or r.code in allowed}


def timeline_and_counts(
    raw: RawInputs,
    machine: Machine,
    reasons: Mapping[int, ReasonCategory],
    settings: KpiSettings,
    *,
    until: dt.datetime,
    now: dt.datetime | None = None,
) -> tuple[list[Interval], CountStreams]:
    """The classified timeline over [raw.since, min(until, now)) and the count streams, as
    tests/kpi/builders.py runs the pure core. `now` caps the timeline: an interval still open
    then is classified by its length so far (docs/kpi.md "Edges")."""
    end = min(until, now) if now is not None else until
    intervals = build_timeline(
        raw.states,
        raw.reasons,
        state_map=machine.state_map,
        reason_categories=reasons,
        since=raw.since,
        until=end,
        settings=settings,
    )
    return intervals, count_streams(raw)


def count_streams(raw: RawInputs) -> CountStreams:
    """Count events per counter: cumulative counters as deltas (with their wrap), delta counters
    summed as they are. Counters not configured stay None (their sums are NULL)."""
    events: dict[str, list[CountEvent]] = {}
    for name, samples in raw.counters.items():
        mode, wrap = raw.counter_modes.get(name, ("cumulative", None))
        if mode == "delta":
            events[name] = increments(samples)
        else:
            events[name] = cumulative_deltas(samples, cycles=raw.cycles, wrap=wrap)
    return CountStreams(raw.cycles, **events)
