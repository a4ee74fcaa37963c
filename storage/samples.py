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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import psycopg

from config.model import ShopfloorConfig
from config.plant import Machine, ReasonCategory, StateClass
from config.settings import KpiSettings
from kpi import (
    CountEvent,
    CountStreams,
    CycleHistory,
    Gaps,
    Interval,
    build_timeline,
    cumulative_deltas,
    data_gaps,
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
    # The stop in effect at `since` began before it: where its run began and the reason the
    # samples before `since` give it (kpi.timeline rule 3); None when not looked up.
    run_start: dt.datetime | None = None
    run_reason: int | None = None
    # The stop in effect at `until` goes on after it: the last reason the samples from `until`
    # to its end give it (it explains all of the stop); None when none or not looked up.
    end_reason: int | None = None


# Every signal of every request in one statement (docs/engine.md, "Round trips per request are
# fixed"): per signal the last sample before `since` (a LATERAL LIMIT 1), then per distinct
# [since, until) one range scan over all its tags with the bounds as plain parameters, so the
# planner excludes chunks. Rows of the range scans come as (-1 - span index, tag, time, value).
# A counter's last sample before `since` is its last *counted* one (a Bad or NaN reading
# after it must not hide the baseline the core would keep: kpi.counts skips such samples).
_BEFORE_SQL = f"""
SELECT q.i, q.tag, r.time, r.value
FROM unnest(%(i)s::int[], %(tag)s::int[], %(since)s::timestamptz[], %(counted)s::bool[])
     AS q (i, tag, since, counted)
CROSS JOIN LATERAL (
    SELECT time, {VALUE_SQL} AS value FROM readings
    WHERE tag_id = q.tag AND time < q.since AND (NOT q.counted OR ({COUNTED_SQL}))
    ORDER BY time DESC LIMIT 1
) AS r
"""
_SPAN_SQL = (
    "SELECT {k}, tag_id, time, " + VALUE_SQL + " FROM readings WHERE tag_id = ANY(%(t{n})s) "
    "AND time >= %(s{n})s AND time < %(u{n})s"
)


def _raw_query(
    slots: list[tuple[int, dt.datetime, dt.datetime]], counted: list[bool]
) -> tuple[str, dict[str, object], dict[tuple[int, int], list[int]]]:
    """The statement for slots (tag, since, until; `counted`: a counter's), its parameters,
    and which slots each (span index, tag) of the range scans feeds."""
    params: dict[str, object] = {
        "i": list(range(len(slots))),
        "tag": [t for t, _, _ in slots],
        "since": [s for _, s, _ in slots],
        "counted": counted,
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


@dataclass(frozen=True)
class ReasonRule:
    """What the look-back of a stop's reason needs for one machine (kpi.timeline rule 3)."""

    stops: frozenset[int]  # PLC state values mapped to a class other than running
    known: frozenset[int]  # the reason codes that explain its stops
    max_gap_s: float


def reason_rule(cfg: ShopfloorConfig, machine: Machine) -> ReasonRule:
    return ReasonRule(
        stops=frozenset(c for c, cls in machine.state_map.items() if cls != StateClass.RUNNING),
        known=frozenset(reason_categories(cfg, machine)),
        max_gap_s=cfg.settings.kpi.max_gap_s,
    )


# For each (state tag, reason tag, instant, state value in effect there, known reason codes):
# where the run of that value began (walking back over equal values without a silence longer
# than the gap: kpi.timeline rule 1), and the last known reason code among the reason in effect
# at the run's start and the reason samples after it, before the instant. Two index range scans
# over the run's own samples; nothing before the run is read.
_RUN_SQL = f"""
SELECT q.i, rs.start, k.value
FROM unnest(%(i)s::int[], %(state)s::int[], %(reason)s::int[], %(at)s::timestamptz[],
            %(value)s::float8[], %(known)s::text[], %(gap)s::interval[])
     AS q (i, state, reason, at, value, known, gap)
CROSS JOIN LATERAL (
    SELECT max(time) AS t FROM readings
    WHERE tag_id = q.state AND time < q.at AND ({VALUE_SQL}) IS DISTINCT FROM q.value
) AS d
CROSS JOIN LATERAL (
    SELECT max(time) FILTER (WHERE step IS NULL OR step > q.gap) AS start
    FROM (
        SELECT time, time - lag(time) OVER (ORDER BY time) AS step FROM readings
        WHERE tag_id = q.state AND time > coalesce(d.t, '-infinity') AND time < q.at
    ) AS run
) AS rs
LEFT JOIN LATERAL (
    SELECT time FROM readings
    WHERE tag_id = q.reason AND time <= rs.start ORDER BY time DESC LIMIT 1
) AS r0 ON true
LEFT JOIN LATERAL (
    SELECT value FROM readings
    WHERE tag_id = q.reason AND time >= coalesce(r0.time, rs.start) AND time < q.at
      AND NOT {BAD_QUALITY_SQL} AND value = ANY(q.known::float8[])
    ORDER BY time DESC LIMIT 1
) AS k ON true
"""

RunQuery = tuple[MachineTags, dt.datetime, float, ReasonRule]  # (tags, instant, value, rule)


async def stop_runs(
    conn: psycopg.AsyncConnection, queries: Sequence[RunQuery]
) -> list[tuple[dt.datetime | None, int | None]]:
    """(run start, reason from before the instant) of the stop in effect at each instant, in
    one statement; the machines must have a state and a stop reason tag."""
    if not queries:
        return []
    params = {
        "i": list(range(len(queries))),
        "state": [t.state for t, _, _, _ in queries],
        "reason": [t.stop_reason for t, _, _, _ in queries],
        "at": [at for _, at, _, _ in queries],
        "value": [v for _, _, v, _ in queries],
        "known": [_codes(r.known) for _, _, _, r in queries],
        "gap": [dt.timedelta(seconds=r.max_gap_s) for _, _, _, r in queries],
    }
    found: list[tuple[dt.datetime | None, int | None]] = [(None, None)] * len(queries)
    async with conn.cursor() as cur:
        await cur.execute(_RUN_SQL, params, prepare=False)
        for i, start, value in await cur.fetchall():
            found[i] = (start, None if value is None else int(value))
    return found


# For each (state tag, reason tag, instant, the last state sample before it and its value,
# known reason codes): where the run of that value ends after the instant (a different or Bad
# value, or a silence longer than the gap: kpi.timeline rule 1), and the last known reason code
# among the reason samples from the instant to that end. A stop whose reason an operator enters
# (or corrects) later explains all of it, also the part before the instant.
_RUN_END_SQL = f"""
SELECT q.i, k.value
FROM unnest(%(i)s::int[], %(state)s::int[], %(reason)s::int[], %(at)s::timestamptz[],
            %(last)s::timestamptz[], %(value)s::float8[], %(known)s::text[], %(gap)s::interval[])
     AS q (i, state, reason, at, last, value, known, gap)
CROSS JOIN LATERAL (
    SELECT min(time) AS t FROM readings
    WHERE tag_id = q.state AND time >= q.at AND ({VALUE_SQL}) IS DISTINCT FROM q.value
) AS d
CROSS JOIN LATERAL (
    SELECT coalesce(min(time + q.gap) FILTER (WHERE nxt IS NULL OR nxt - time > q.gap), d.t)
           AS t
    FROM (
        SELECT time, coalesce(lead(time) OVER (ORDER BY time), d.t) AS nxt FROM readings
        WHERE tag_id = q.state AND time >= q.last AND time < coalesce(d.t, 'infinity')
    ) AS run
) AS e
CROSS JOIN LATERAL (
    SELECT value FROM readings
    WHERE tag_id = q.reason AND time >= q.at AND time < least(e.t, %(now)s)
      AND NOT {BAD_QUALITY_SQL} AND value = ANY(q.known::float8[])
    ORDER BY time DESC LIMIT 1
) AS k
"""

EndQuery = tuple[MachineTags, dt.datetime, Sample, ReasonRule]  # (tags, instant, last, rule)


async def stop_reasons_after(
    conn: psycopg.AsyncConnection, queries: Sequence[EndQuery], now: dt.datetime
) -> list[int | None]:
    """The last known reason code of the stop in effect at each instant, from the reason
    samples between the instant and the stop's end (or `now`), in one statement (None: none
    there)."""
    if not queries:
        return []
    params = {
        "now": now,
        "i": list(range(len(queries))),
        "state": [t.state for t, _, _, _ in queries],
        "reason": [t.stop_reason for t, _, _, _ in queries],
        "at": [at for _, at, _, _ in queries],
        "last": [last[0] for _, _, last, _ in queries],
        "value": [last[1] for _, _, last, _ in queries],
        "known": [_codes(r.known) for _, _, _, r in queries],
        "gap": [dt.timedelta(seconds=r.max_gap_s) for _, _, _, r in queries],
    }
    found: list[int | None] = [None] * len(queries)
    async with conn.cursor() as cur:
        await cur.execute(_RUN_END_SQL, params, prepare=False)
        for i, value in await cur.fetchall():
            found[i] = int(value)
    return found


def _codes(known: frozenset[int]) -> str:
    """A set of codes as a PostgreSQL array literal (cast to float8[] in SQL)."""
    return "{" + ",".join(map(str, sorted(known))) + "}"


def code_in(value: float | None, codes: frozenset[int]) -> int | None:
    """A sample's value as one of `codes` (a PLC state or reason code), else None."""
    if value is None or not float(value).is_integer() or int(value) not in codes:
        return None
    return int(value)


def _stop_at_end(raw: RawInputs, rule: ReasonRule) -> Sample | None:
    """The last state sample when a stop of its value lasts to `raw.until` (held, no silence
    longer than the gap): later reason samples in that stop may explain it; else None."""
    if not raw.states:
        return None
    t, value = raw.states[-1]
    code = code_in(value, rule.stops)
    if code is None or t + dt.timedelta(seconds=rule.max_gap_s) < raw.until:
        return None
    return (t, float(code))


def _stop_in_effect(raw: RawInputs, rule: ReasonRule) -> float | None:
    """The state value of a stop in effect at `raw.since` whose reason, if any, lies before
    the samples fetched (no known reason is in effect there); None when nothing to look up."""
    if not raw.states or raw.states[0][0] >= raw.since:
        return None
    code = code_in(raw.states[0][1], rule.stops)
    if code is None:
        return None
    reason = raw.reasons[0] if raw.reasons and raw.reasons[0][0] < raw.since else None
    if reason is not None and code_in(reason[1], rule.known) is not None:
        return None  # the reason in effect is known: the fetched samples suffice
    return float(code)


# A machine's ideal cycles (kind 0) and units per count (kind 1) over time, in one statement.
_CYCLES_SQL = """
SELECT machine_id, 0, valid_from, ideal_cycle_s FROM machine_ideal_cycles
WHERE machine_id = ANY(%(ids)s)
UNION ALL
SELECT machine_id, 1, valid_from, units_per_count FROM machine_units WHERE machine_id = ANY(%(ids)s)
"""


async def cycle_histories(
    conn: psycopg.AsyncConnection, machine_ids: list[str]
) -> dict[str, CycleHistory]:
    """Ideal cycle and units per count histories of the machines; a machine without a cycle
    row is an error (the plant was not synced); without a units row it counts 1 unit."""
    async with conn.cursor() as cur:
        await cur.execute(_CYCLES_SQL, {"ids": sorted(set(machine_ids))})
        rows = await cur.fetchall()
    cycles: dict[str, list[tuple[dt.datetime, float]]] = {}
    units: dict[str, list[tuple[dt.datetime, int]]] = {}
    for machine_id, kind, valid_from, value in rows:
        if kind == 0:
            cycles.setdefault(machine_id, []).append((valid_from, float(value)))
        else:
            units.setdefault(machine_id, []).append((valid_from, int(value)))
    for machine_id in machine_ids:
        if machine_id not in cycles:
            raise ValueError(
                f"machine {machine_id!r} has no row in machine_ideal_cycles: sync the plant first"
            )
    return {
        m: CycleHistory(tuple(e), tuple(units[m])) if m in units else CycleHistory(tuple(e))
        for m, e in cycles.items()
    }


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
    *,
    rules: Mapping[str, ReasonRule] | None = None,
    now: dt.datetime | None = None,
) -> list[RawInputs]:
    """Each machine's samples in [since, until), each signal with its last sample before, for
    several (machine, span) requests at once: one query for all samples, one for the cycle
    histories (unless given), whatever the number of requests. With `rules` (per machine id),
    a stop in effect at `since` whose reason lies further back gets `run_start`/`run_reason`,
    and one going on at `until` (before `now`) the reason samples after it give it,
    `end_reason` (one more query each, only when some request has such a stop)."""
    for tags, since, until in requests:
        _check(tags, since, until)
    if not requests:
        return []
    # One slot per (request, signal) with a tag; `signals[request]` = [(signal name, slot)].
    signals: list[list[tuple[str, int]]] = []
    slots: list[tuple[int, dt.datetime, dt.datetime]] = []
    counted: list[bool] = []
    for tags, since, until in requests:
        wanted = [("state", tags.state), ("reason", tags.stop_reason)]
        wanted += [(name, tag_id) for name, (tag_id, _, _) in tags.counters.items()]
        mine = []
        for name, tag_id in wanted:
            if tag_id is not None:
                mine.append((name, len(slots)))
                slots.append((tag_id, since, until))
                counted.append(name not in ("state", "reason"))
        signals.append(mine)
    if cycles is None:
        cycles = await cycle_histories(conn, [t.machine_id for t, _, _ in requests])
    found: list[list[Sample]] = [[] for _ in slots]
    if slots:
        query, params, feeds = _raw_query(slots, counted)
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
    if rules:
        await _look_back(conn, requests, out, rules, now)
    return out


async def _look_back(
    conn: psycopg.AsyncConnection,
    requests: list[RawRequest],
    raws: list[RawInputs],
    rules: Mapping[str, ReasonRule],
    now: dt.datetime | None,
) -> None:
    """Fill run_start/run_reason and end_reason (in place) of the requests with a stop at an
    edge whose reason may lie beyond the samples fetched."""
    queries: list[RunQuery] = []
    ends: list[EndQuery] = []
    where: list[int] = []
    where_end: list[int] = []
    for k, ((tags, _, _), raw) in enumerate(zip(requests, raws, strict=True)):
        rule = rules.get(tags.machine_id)
        if rule is None or not rule.known or tags.state is None or tags.stop_reason is None:
            continue
        value = _stop_in_effect(raw, rule)
        if value is not None:
            queries.append((tags, raw.since, value, rule))
            where.append(k)
        last = _stop_at_end(raw, rule) if now is not None and raw.until < now else None
        if last is not None:
            ends.append((tags, raw.until, last, rule))
            where_end.append(k)
    for k, (start, reason) in zip(where, await stop_runs(conn, queries), strict=True):
        raws[k] = replace(raws[k], run_start=start, run_reason=reason)
    after_end = await stop_reasons_after(conn, ends, now) if now is not None else []
    for k, after in zip(where_end, after_end, strict=True):
        raws[k] = replace(raws[k], end_reason=after)


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
        run_reason=raw.run_reason,
        end_reason=raw.end_reason,
    )
    return intervals, count_streams(raw, data_gaps(intervals, settings))


def count_streams(raw: RawInputs, gaps: Gaps) -> CountStreams:
    """Count events per counter: cumulative counters as deltas (with their wrap), delta counters
    summed as they are. Counters not configured stay None (their sums are NULL)."""
    events: dict[str, list[CountEvent]] = {}
    for name, samples in raw.counters.items():
        mode, wrap = raw.counter_modes.get(name, ("cumulative", None))
        if mode == "delta":
            events[name] = increments(samples)
        else:
            events[name] = cumulative_deltas(samples, cycles=raw.cycles, wrap=wrap)
    return CountStreams(raw.cycles, **events, gaps=gaps)
