"""Downtime by stop reason (a Pareto): rows keyed by (reason, class), over productive calendar
time only, the time the KPIs' stop figures use, so a machine's `down` rows add up to its
`down_time_s` (docs/engine.md, "Downtime Pareto").

An event is an interval with productive time in the window, counted once (also when a break
cuts it into two productive parts). `downtime_rows` counts them on the raw timeline of the whole
window (the raw-only path); `rollup_downtime` reads whole minutes from rollups
(storage.reason_rollups) and only the window's edges raw, and counts the same events from facts
local to each minute: per productive run of the window, the intervals starting inside it plus
the one in effect at its start, less that one when it is the interval already in effect before
the gap in front of the run (in effect at both ends of the gap, with nothing starting inside it).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import psycopg

from config.plant import StopReason
from kpi import Interval
from kpi.spans import Span, clip, intersect, union
from storage import samples
from storage.engine.downtime_read import RollupStops, rollup_stops
from storage.engine.plant import Plant
from storage.engine.rollup_read import rollup_spans
from storage.engine.sums import raw_timelines
from storage.reason_rollups import Key, stop_parts


@dataclass(frozen=True)
class DowntimeRow:
    reason: int | None  # stop reason code; None: the PLC gave no (known) reason
    text: str | None  # the reason's text from the reason table
    category: str | None  # the reason's category (failure, idle, setup, planned)
    time_class: str  # down, idle, setup, planned_stop or short_stop
    duration_s: float
    events: int
    share: float  # of all rows' duration; 0 when there is no stop time at all


Figures = dict[Key, list]  # key -> [seconds, events]


def _add(acc: Figures, key: Key, seconds: float, events: int) -> None:
    row = acc.get(key)
    if row is None:
        acc[key] = [seconds, events]
    else:
        row[0] += seconds
        row[1] += events


def downtime_rows(
    timelines: Iterable[Sequence[Interval]],
    productive: Sequence[Span],
    reasons: Mapping[int, StopReason],
) -> list[DowntimeRow]:
    """Pareto rows over the machines' timelines (clipped to the window), sorted by duration
    (then events) descending. `productive`: sorted disjoint spans (CalendarTime.planned)."""
    spans = list(productive)
    for (_, b), (c, _) in itertools.pairwise(spans):
        if c < b:
            raise ValueError(f"productive spans must be sorted and disjoint: {c} < {b}")
    acc: Figures = {}
    for intervals in timelines:
        counted = -1  # an interval's parts come one after another: count it at its first
        for i, _, key, length, _ in stop_parts(intervals, spans):
            _add(acc, key, length.total_seconds(), 1 if i != counted else 0)
            counted = i
    return pareto(acc, reasons)


def pareto(acc: Figures, reasons: Mapping[int, StopReason]) -> list[DowntimeRow]:
    """The rows of (seconds, events) per key, longest first."""
    total = sum(v[0] for v in acc.values())
    rows = []
    for (code, cls), (dur, n) in acc.items():
        known = reasons.get(code) if code is not None else None
        rows.append(
            DowntimeRow(
                reason=code,
                text=known.text if known else None,
                category=known.category.value if known else None,
                time_class=cls,
                duration_s=dur,
                events=int(n),
                share=dur / total if total > 0 else 0.0,
            )
        )
    rows.sort(
        key=lambda r: (-r.duration_s, -r.events, r.reason is None, r.reason or 0, r.time_class)
    )
    return rows


def gaps_between(runs: Sequence[Span]) -> list[Span]:
    """The gaps between consecutive productive runs (gap j lies before run j + 1)."""
    return [(a[1], b[0]) for a, b in itertools.pairwise(runs)]


def machine_figures(
    machine_id: str,
    runs: Sequence[Span],
    raw: Sequence[tuple[Span, Sequence[Interval]]],
    part: Span | None,
    rolled: RollupStops,
) -> Figures:
    """(seconds, events) per key of one machine over the window whose productive time is the
    sorted, disjoint, not touching `runs`: `raw` its raw pieces (each with the whole intervals
    around it), `part` its rollup part (figures in `rolled`), together tiling the window."""
    gaps = gaps_between(runs)
    acc: Figures = {}
    carried: dict[dt.datetime, Key] = {}  # raw pieces: the key carried at a span's start
    gap_starts = [0] * len(gaps)
    for piece, intervals in raw:
        spans = intersect(runs, [piece])
        for _, k, key, length, was_carried in stop_parts(intervals, spans):
            _add(acc, key, length.total_seconds(), 0 if was_carried else 1)
            if was_carried:
                carried[spans[k][0]] = key
        inside = [(j, g) for j, gap in enumerate(gaps) if (g := clip(gap, *piece))]
        for _, k, key, _, was_carried in stop_parts(intervals, [g for _, g in inside]):
            if was_carried:
                carried[inside[k][1][0]] = key
            else:
                gap_starts[inside[k][0]] += 1
    if part is not None:
        for key, (seconds, starts) in rolled.sums.get(machine_id, {}).items():
            _add(acc, key, seconds, starts)

    def carried_at(t: dt.datetime) -> Key | None:
        if part is not None and part[0] <= t < part[1]:
            return rolled.carried.get((machine_id, t))
        return carried.get(t)

    def spanned(j: int) -> bool:
        """One interval is in effect across all of gap j: carried at its start and nothing
        starts inside it (then the interval carried at its end is that one)."""
        gap = gaps[j]
        if carried_at(gap[0]) is None or gap_starts[j]:
            return False
        # the gap's rollup part must hold stop time and no start (none: not in effect there)
        return part is None or clip(gap, *part) is None or (machine_id, j) in rolled.quiet

    for i, (lo, _) in enumerate(runs):
        in_effect = carried_at(lo)
        if in_effect is not None and not (i > 0 and spanned(i - 1)):
            _add(acc, in_effect, 0.0, 1)
    return acc


def _raw_pieces(s: dt.datetime, e: dt.datetime, part: Span | None) -> list[Span]:
    """The machine's raw parts of [s, e): all of it, or the edges around its rollup part."""
    if part is None:
        return [(s, e)]
    return [p for p in ((s, part[0]), (part[1], e)) if p[0] < p[1]]


async def rollup_downtime(
    conn: psycopg.AsyncConnection,
    plant: Plant,
    machine_ids: Sequence[str],
    s: dt.datetime,
    e: dt.datetime,
    now: dt.datetime,
    productive: Sequence[Span],
) -> list[DowntimeRow]:
    """The Pareto of [s, e) (e <= now) from rollups for whole minutes where they are exact,
    raw samples for the rest: equal to `downtime_rows` over the raw timelines."""
    runs = union(productive)
    mid, parts = await rollup_spans(conn, plant.cfg.settings.kpi, machine_ids, s, e)
    tags = await samples.machine_tags(conn)
    wanted = [
        (m, piece) for m in machine_ids if m in tags for piece in _raw_pieces(s, e, parts.get(m))
    ]
    found = await raw_timelines(
        conn, plant, [(tags[m], lo, hi) for m, (lo, hi) in wanted], now, with_counts=False
    )
    raw: dict[str, list[tuple[Span, Sequence[Interval]]]] = {}
    for (m, piece), (intervals, _) in zip(wanted, found, strict=True):
        raw.setdefault(m, []).append((piece, intervals))
    rolled = RollupStops()
    if mid is not None:
        rolled = await rollup_stops(conn, list(parts), mid, runs, gaps_between(runs))
    acc: Figures = {}
    for m in machine_ids:
        for key, (seconds, events) in machine_figures(
            m, runs, raw.get(m, []), parts.get(m), rolled
        ).items():
            _add(acc, key, seconds, events)
    return pareto(acc, plant.reason_table)
