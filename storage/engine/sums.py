"""Window sums of machines, per bucket: whole minutes from rollups, the rest from raw samples.

For buckets tiling [s, e) (e already capped at now):

    [s, ceil_minute(s))                         raw samples -> window_sums
    [ceil_minute(s), min(floor_minute(e), c))   rollup rows summed per bucket and region in SQL
    [min(floor_minute(e), c), e)                raw samples -> window_sums

with c = covered_until of the machines (the earliest of them), before which rollup rows are
exact. Raw pieces are built whole (the pure core's timeline with its context margin), so a
piece's sums equal the same piece of a raw-only computation; `use_rollups=False` computes
everything from raw samples, which is what the rollup test compares against.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

import psycopg

from config.plant import Calendar
from config.settings import KpiSettings
from storage import rollups, samples
from storage.engine.plant import Plant
from storage.engine.rollup_read import rollup_sums
from storage.engine.windows import (
    MINUTE,
    Piece,
    Region,
    RegionCutter,
    ceil_to,
    floor_to,
    pieces,
)
from storage.kpi import (
    Bucket,
    CalendarTime,
    Counts,
    CountStreams,
    Interval,
    StateSeconds,
    Sums,
    TimeSums,
    calendar_time,
    context_margin,
    time_elements,
    window_sums,
)
from storage.kpi.spans import Span, clip

COUNTER_NAMES = ("good", "reject", "total")


def counter_names(tags: samples.MachineTags | None) -> frozenset[str]:
    """Which of good / reject / total a machine's tags measure."""
    return frozenset(tags.counters) if tags is not None else frozenset()


def empty_sums(names: frozenset[str], calendar_missing: bool) -> Sums:
    """Sums of an empty window: zero times, zero counts for the configured counters."""
    counts = Counts(
        *(0 if n in names else None for n in COUNTER_NAMES),
        *(0.0 if n in names else None for n in COUNTER_NAMES),
    )
    flags = {"calendar_missing": 1} if calendar_missing else {}
    return Sums(TimeSums(flags=flags), counts)


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
    raws = await samples.fetch_raw_many(conn, requests)
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


async def bucket_sums(
    conn: psycopg.AsyncConnection,
    plant: Plant,
    machine_ids: Sequence[str],
    buckets: Sequence[Bucket],
    calendar: Calendar | None,
    now: dt.datetime,
    *,
    use_rollups: bool = True,
) -> dict[str, list[Sums]]:
    """Sums of each machine in each bucket; buckets tile [s, e) with e <= now."""
    all_tags = await samples.machine_tags(conn)
    names = {m: counter_names(all_tags.get(m)) for m in machine_ids}
    if not buckets:
        return {m: [] for m in machine_ids}
    s, e = buckets[0].start, buckets[-1].end
    cal = calendar_time(calendar, s, e) if calendar else None
    zero = {m: empty_sums(names[m], False) for m in machine_ids}
    out = {m: [zero[m]] * len(buckets) for m in machine_ids}

    mid: Span | None = None
    if use_rollups:
        covered = await rollups.covered_until(conn, list(machine_ids), kpi=plant.cfg.settings.kpi)
        c = min((covered.get(m) for m in machine_ids), key=_none_first, default=None)
        lo, hi = ceil_to(s, MINUTE), floor_to(e, MINUTE)
        if c is not None:
            hi = min(hi, floor_to(c, MINUTE))
            mid = (lo, hi) if lo < hi else None
    raw_spans = [(s, e)] if mid is None else [p for p in ((s, mid[0]), (mid[1], e)) if p[0] < p[1]]

    if mid is not None:
        await _add_rollups(conn, machine_ids, buckets, mid, cal, calendar is None, names, out)
    edges = [(m, lo, hi) for m in machine_ids if all_tags.get(m) for lo, hi in raw_spans]
    found = await raw_timelines(conn, plant, [(all_tags[m], lo, hi) for m, lo, hi in edges], now)
    for (machine_id, lo, hi), (intervals, streams) in zip(edges, found, strict=True):
        for i, part in _parts(buckets, lo, hi):
            piece = window_sums(intervals, *part, calendar=cal, counts=streams)
            out[machine_id][i] = out[machine_id][i] + piece
    for machine_id in machine_ids:
        if all_tags.get(machine_id) is None:
            for lo, hi in raw_spans:
                for i, part in _parts(buckets, lo, hi):
                    piece = window_sums([], *part, calendar=cal, counts=None)
                    out[machine_id][i] = out[machine_id][i] + piece
    return {m: [_one_calendar_flag(x) for x in sums] for m, sums in out.items()}


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


def _none_first(t: dt.datetime | None) -> dt.datetime:
    return dt.datetime.min.replace(tzinfo=dt.UTC) if t is None else t


async def _add_rollups(
    conn: psycopg.AsyncConnection,
    machine_ids: Sequence[str],
    buckets: Sequence[Bucket],
    mid: Span,
    cal: CalendarTime | None,
    calendar_missing: bool,
    names: dict[str, frozenset[str]],
    out: dict[str, list[Sums]],
) -> None:
    """Rollup sums of [mid) into `out`, whose buckets must still hold the empty sums."""
    hours: list[Piece] = []
    minutes: list[Piece] = []
    cuts = {}
    cutter = RegionCutter(cal)
    for i, part in _parts(buckets, *mid):
        cut = cutter(*part)
        cuts[i] = cut
        h, m = pieces(cut, i)
        hours += h
        minutes += m
    found = await rollup_sums(conn, machine_ids, hours, minutes, names)
    # Every bucket still holds the empty sums here (raw edges are added after), and empty sums
    # + x == x exactly (zeros, None for counters not configured), so the rollup sums are
    # assigned rather than added: one Sums addition less per machine and bucket.
    none = StateSeconds()
    for machine_id in machine_ids:
        sums = out[machine_id]
        for i, cut in cuts.items():
            acc = found[machine_id, i]
            regions = acc.regions
            times = time_elements(
                regions.get(Region.PRODUCTIVE, none),
                regions.get(Region.BREAK, none),
                regions.get(Region.OUTSIDE, none),
                planned_time_s=cut.planned_s,
                break_s=cut.break_s,
                calendar_missing=calendar_missing,
            )
            sums[i] = Sums(times, acc.counts)
