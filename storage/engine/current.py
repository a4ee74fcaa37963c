"""What each machine is doing now: its current interval of the raw timeline.

The timeline is built over a short look-back and widened (doubling, up to `MAX_LOOKBACK`)
while the current interval reaches back to the look-back's start, so `since` is the real start
of the current state without reading weeks of heartbeats for a machine that just changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import psycopg

from kpi import Interval, TimeClass
from storage import samples
from storage.engine.plant import Plant
from storage.engine.sums import timeline_and_streams

FIRST_LOOKBACK = dt.timedelta(hours=1)
MAX_LOOKBACK = dt.timedelta(days=32)


@dataclass(frozen=True)
class CurrentState:
    machine_id: str
    since: dt.datetime | None  # start of the current interval; None: no state data at all
    time_class: TimeClass  # `unknown` once the last sample is older than max_gap_s
    reason: int | None
    short_stop: bool  # a stop in progress shorter than short_stop_s so far
    value: float | None  # the last PLC state value
    sample_time: dt.datetime | None  # time of that value
    stale: bool  # last state sample older than max_gap_s (or none)


async def current_states(
    conn: psycopg.AsyncConnection,
    plant: Plant,
    tags: Mapping[str, samples.MachineTags],
    machine_ids: Sequence[str],
    now: dt.datetime,
) -> dict[str, CurrentState]:
    """Each machine's current state; every look-back step reads all machines still widening in
    one query."""
    out: dict[str, CurrentState] = {}
    pending: dict[str, samples.MachineTags] = {}
    for m in machine_ids:
        mt = tags.get(m)
        if mt is None or mt.state is None:
            out[m] = CurrentState(m, None, TimeClass.UNKNOWN, None, False, None, None, True)
        else:
            pending[m] = replace(mt, counters={})
    back = FIRST_LOOKBACK
    while pending:
        since = now - back
        raws = await samples.fetch_raw_many(
            conn, [(t, since, now) for t in pending.values()], rules=plant.reason_rules
        )
        for (m, mt), raw in zip(list(pending.items()), raws, strict=True):
            intervals, _ = timeline_and_streams(plant, mt, raw, until=now, now=now)
            last: Interval | None = intervals[-1] if intervals else None
            widen = last is not None and last.start <= since and raw.states
            if not widen or back >= MAX_LOOKBACK:
                out[m] = _state(plant, m, raw, last, now)
                del pending[m]
        back *= 2
    return {m: out[m] for m in machine_ids}


def _state(
    plant: Plant, machine_id: str, raw: samples.RawInputs, last: Interval | None, now: dt.datetime
) -> CurrentState:
    value, at = (raw.states[-1][1], raw.states[-1][0]) if raw.states else (None, None)
    stale = at is None or (now - at).total_seconds() > plant.cfg.settings.kpi.max_gap_s
    if last is None or (not raw.states):
        return CurrentState(machine_id, None, TimeClass.UNKNOWN, None, False, value, at, True)
    return CurrentState(
        machine_id=machine_id,
        since=last.start,
        time_class=last.time_class,
        reason=last.reason,
        short_stop=last.short_stop,
        value=None if value is None else float(value),
        sample_time=at,
        stale=stale,
    )
