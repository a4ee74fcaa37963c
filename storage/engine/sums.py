"""Window sums of machines, per bucket: whole minutes from rollups, the rest from raw samples.

For buckets tiling [s, e) (e already capped at now):

    [s, ceil_minute(s))                         raw samples -> window_sums
    [ceil_minute(s), min(floor_minute(e), c))   rollup rows summed per bucket and region in SQL
    [min(floor_minute(e), c), e)                raw samples -> window_sums

with c = covered_until of the machines (the earliest of them), before which rollup rows are
exact. A machine whose rollup rows start later than ceil_minute(s) (they start at its first
reading) has its rollup part start at its first row, and raw samples cover what is before
(unknown before the first reading, as the raw-only path says); without any row in the middle
part it is read raw throughout. Raw pieces are built whole (the pure core's timeline with its
context margin), so a piece's sums equal the same piece of a raw-only computation;
`use_rollups=False` computes everything from raw samples, which is what the rollup test
compares against.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

import psycopg

from config.plant import Calendar
from config.settings import KpiSettings
from kpi import (
    Bucket,
    CalendarTime,
    CountStreams,
    Interval,
    Sums,
    TimeSums,
    calendar_time,
    context_margin,
    window_sums,
)
from kpi.spans import Span, clip
from storage import samples
from storage.engine.plant import Plant
from storage.engine.rollup_read import NO_ROWS, Row, rollup_rows, rollup_spans
from storage.engine.rollup_read import bucket_counts as rollup_bucket_counts
from storage.engine.rollup_read import bucket_sums as rollup_bucket_sums
from storage.engine.windows import (
    Pieces,
    RegionCutter,
)

T = TypeVar("T")


def counter_names(tags: samples.MachineTags | None) -> frozenset[str]:
    """Which of good / reject / total a machine's tags measure."""
    return frozenset(tags.counters) if tags is not None else frozenset()


def empty_sums(names: frozenset[str], calendar_missing: bool) -> Sums:
    """Sums of an empty window: zero times, zero counts for the configured counters."""
    flags = {"calendar_missing": 1} if calendar_missing else {}
    return rollup_bucket_counts(NO_ROWS, names, TimeSums(flags=flags))


def _one_calendar_flag(s: Sums) -> Sums:
    """Every part of a window carries `calendar_missing`; the window carries it once."""
    flags = s.times.flags
    if flags.get("calendar_missing", 0) > 1:
        s = Sums(replace(s.times, flags={**flags, "calendar_missing": 1}), s.counts)
    return s


async def raw_timelines(
    conn: psycopg.AsyncConnection,
    plant: Plant,
    spans: Sequence[tuple[samples.MachineTags, dt.datetime, dt.datetime]],
    now: dt.datetime,
    *,
    with_counts: bool = True,
) -> list[tuple[list[Interval], CountStreams]]:
    """Whole classified intervals (and count events) around each (machine, lo, hi), from raw
    samples: the samples of all of them in one query."""
    settings: KpiSettings = plant.cfg.settings.kpi
    margin = context_margin(settings)
    requests: list[samples.RawRequest] = []
    for tags, lo, hi in spans:
        t = tags if with_counts else replace(tags, counters={})
        requests.append((t, lo - margin, min(hi + margin, now)))
    raws = await samples.fetch_raw_many(conn, requests, rules=plant.reason_rules, now=now)
    return [
        timeline_and_streams(plant, t, raw, until=until, now=now)
        for (t, _, until), raw in zip(requests, raws, strict=True)
    ]


def timeline_and_streams(
    plant: Plant,
    tags: samples.MachineTags,
    raw: samples.RawInputs,
    *,
    until: dt.datetime,
    now: dt.datetime,
) -> tuple[list[Interval], CountStreams]:
    """The pure core on raw inputs, with the machine's plant settings."""
    _, machine = plant.machine(tags.machine_id)
    return samples.timeline_and_counts(
        raw,
        machine,
        samples.reason_categories(plant.cfg, machine),
        plant.cfg.settings.kpi,
        until=until,
        now=now,
    )


async def bucket_results(
    conn: psycopg.AsyncConnection,
    plant: Plant,
    machine_ids: Sequence[str],
    buckets: Sequence[Bucket],
    calendar: Calendar | None,
    now: dt.datetime,
    each: Callable[[dict[str, Sums]], T],
    *,
    use_rollups: bool = True,
    counts_only: frozenset[str] = frozenset(),
) -> list[T]:
    """`each(sums)` of every bucket, in order; `sums` = each machine's sums in that bucket
    (keys in `machine_ids` order). Buckets tile [s, e) with e <= now.

    A bucket's sums are handed to `each` as soon as its rollup rows are in (they come in bucket
    order), then dropped. Machines in `counts_only` get their counts and flags only (zero time
    elements carrying the flags full sums would carry): a line's KPIs read no more of every
    machine but the constraint (KPI.md §4). Why: docs/engine.md, "Series cost per bucket".
    """
    all_tags = await samples.machine_tags(conn)
    names = {m: counter_names(all_tags.get(m)) for m in machine_ids}
    if not buckets:
        return []
    s, e = buckets[0].start, buckets[-1].end
    cal = calendar_time(calendar, s, e) if calendar else None

    mid: Span | None = None
    # machines whose rollup part starts after mid[0] (mid[1]: none), see the module docstring
    starts: dict[str, dt.datetime] = {}
    if use_rollups:
        mid, parts = await rollup_spans(conn, plant.cfg.settings.kpi, machine_ids, s, e)
        if mid is not None:
            starts = {m: parts[m][0] if m in parts else mid[1] for m in machine_ids}
            starts = {m: start for m, start in starts.items() if start != mid[0]}

    def raw_spans(machine_id: str) -> list[Span]:
        """The machine's raw parts of [s, e): all of it, or the edges around its rollup part."""
        if mid is None:
            return [(s, e)]
        start = starts.get(machine_id, mid[0])
        if start >= mid[1]:
            return [(s, e)]
        return [p for p in ((s, start), (mid[1], e)) if p[0] < p[1]]

    # The raw edges' pieces per bucket, in the order they are added to the bucket's sums; a
    # machine without tags has no samples (an empty timeline, no counters).
    edge_pieces: dict[int, list[tuple[str, Sums]]] = {}
    edges = [(m, lo, hi) for m in machine_ids for lo, hi in raw_spans(m)]
    tagged = [(m, lo, hi) for m, lo, hi in edges if all_tags.get(m)]
    found = await raw_timelines(conn, plant, [(all_tags[m], lo, hi) for m, lo, hi in tagged], now)
    timelines = dict(zip(tagged, found, strict=True))
    for machine_id, lo, hi in edges:
        intervals, streams = timelines.get((machine_id, lo, hi), ([], None))
        for i, part in _parts(buckets, lo, hi):
            piece = window_sums(intervals, *part, calendar=cal, counts=streams)
            if machine_id in counts_only:
                piece = Sums(TimeSums(flags=piece.times.flags), piece.counts)
            edge_pieces.setdefault(i, []).append((machine_id, piece))

    zero = {m: empty_sums(names[m], False) for m in machine_ids}

    def finish(i: int, sums: dict[str, Sums]) -> T:
        for machine_id, piece in edge_pieces.get(i, ()):
            sums[machine_id] = sums[machine_id] + piece
        if calendar is None:  # every piece without a calendar carries calendar_missing
            sums = {m: _one_calendar_flag(x) for m, x in sums.items()}
        return each(sums)

    out: list[T] = []
    if mid is None:
        return [finish(i, dict(zero)) for i in range(len(buckets))]
    rollup = _RollupBuckets(buckets, mid, cal, calendar is None, names, counts_only, starts)
    async for i, bucket in rollup.read(conn, machine_ids):
        while len(out) < i:  # buckets before it: no rollup part, or no rollup rows
            out.append(finish(len(out), rollup.empty(len(out), machine_ids, zero)))
        out.append(finish(i, bucket))
    while len(out) < len(buckets):
        out.append(finish(len(out), rollup.empty(len(out), machine_ids, zero)))
    return out


def _parts(buckets: Sequence[Bucket], lo: dt.datetime, hi: dt.datetime) -> list[tuple[int, Span]]:
    """(index, part inside [lo, hi)) of the sorted, disjoint buckets overlapping [lo, hi)."""
    first = bisect.bisect_right([b.end for b in buckets], lo)
    out: list[tuple[int, Span]] = []
    for i in range(first, len(buckets)):
        b = buckets[i]
        if b.start >= hi:
            break
        part = clip((b.start, b.end), lo, hi)
        if part:
            out.append((i, part))
    return out


class _RollupBuckets:
    """The rollup part [mid) of each bucket, as each machine's sums, one bucket at a time."""

    def __init__(
        self,
        buckets: Sequence[Bucket],
        mid: Span,
        cal: CalendarTime | None,
        calendar_missing: bool,
        names: dict[str, frozenset[str]],
        counts_only: frozenset[str],
        starts: dict[str, dt.datetime],
    ) -> None:
        self.names, self.counts_only, self.calendar_missing = names, counts_only, calendar_missing
        self.pieces = Pieces()
        # per bucket with a rollup part (planned_time_s, break_s): the cuts themselves are
        # dropped once in `pieces` (fewer live objects, fewer garbage collector passes)
        self.calendar_s: dict[int, tuple[float, float]] = {}
        cutter = RegionCutter(cal)
        for i, part in _parts(buckets, *mid):
            cut = cutter(*part)
            self.calendar_s[i] = (cut.planned_s, cut.break_s)
            self.pieces.add(*part, cut, i)
        # Machines whose rollup part starts at `starts[m]` > mid[0]: their rows sum only from
        # there, so the buckets before it have calendar seconds of their own (the raw edge
        # before `starts[m]` counts the rest).
        self.own_calendar_s: dict[str, dict[int, tuple[float, float]]] = {}
        for machine_id, start in starts.items():
            if machine_id in counts_only:
                continue
            own = self.own_calendar_s[machine_id] = {}
            for i, _ in _parts(buckets, mid[0], start):
                end = min(buckets[i].end, mid[1])  # where the bucket's rollup part ends
                if end <= start:  # none of it is the machine's
                    own[i] = (0.0, 0.0)
                else:
                    cut = cutter(start, end)
                    own[i] = (cut.planned_s, cut.break_s)
        # counts-only machines: one zero TimeSums with the flags time_elements would give
        self.no_times = TimeSums(flags={"calendar_missing": 1} if calendar_missing else {})

    async def read(
        self, conn: psycopg.AsyncConnection, machine_ids: Sequence[str]
    ) -> AsyncIterator[tuple[int, dict[str, Sums]]]:
        """(bucket, each machine's rollup sums) of the buckets with rollup rows, in order."""
        time_ids = [m for m in machine_ids if m not in self.counts_only]
        rows: dict[str, Row] = {}
        current = -1
        async for some in rollup_rows(conn, machine_ids, self.pieces, time_ids=time_ids):
            for row in some:
                if row[1] != current:
                    if rows:
                        yield current, self.sums(current, machine_ids, rows)
                    rows, current = {}, row[1]
                rows[row[0]] = row
        if rows:
            yield current, self.sums(current, machine_ids, rows)

    def empty(self, i: int, machine_ids: Sequence[str], zero: dict[str, Sums]) -> dict[str, Sums]:
        """Bucket i without rollup rows: the sums of no rows where it has a rollup part."""
        if i not in self.calendar_s:
            return dict(zero)
        return self.sums(i, machine_ids, {})

    def sums(self, i: int, machine_ids: Sequence[str], rows: dict[str, Row]) -> dict[str, Sums]:
        planned_s, break_s = self.calendar_s[i]
        out: dict[str, Sums] = {}
        own_calendar_s = self.own_calendar_s
        for machine_id in machine_ids:
            row = rows.get(machine_id, NO_ROWS)
            if machine_id in self.counts_only:
                out[machine_id] = rollup_bucket_counts(row, self.names[machine_id], self.no_times)
                continue
            own = own_calendar_s.get(machine_id) if own_calendar_s else None
            planned, breaks = own[i] if own and i in own else (planned_s, break_s)
            out[machine_id] = rollup_bucket_sums(
                row,
                self.names[machine_id],
                planned_time_s=planned,
                break_s=breaks,
                calendar_missing=self.calendar_missing,
            )
        return out
