"""Part counts from PLC counters (KPI.md §2), and the ideal time those parts are worth.

Cumulative counters become deltas between consecutive samples; each delta belongs to the
later sample's timestamp, so a window (or bucket) owns exactly the deltas stamped inside it and
buckets add up to the window. The caller supplies the last sample before the window as the
first baseline; a counter's very first sample only sets the baseline.

A glitch (a jump above elapsed / fastest ideal cycle x 1.5 + 10) is dropped and flagged, and
the old baseline is kept, so a single spike (1234, 60000, 1235) costs nothing. When the next
sample is plausible only against the jumped value, the jump was a real level change (e.g. a
counter preset): the new level becomes the baseline, still without counting the jump.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TypeVar

from kpi.flags import FlagCounts, add_flags

Sample = tuple[dt.datetime, float | int | None]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class CycleHistory:
    """A machine's ideal cycle time over time: (valid_from, ideal_cycle_s), any order; and its
    units per count (KPI.md §4, line units) over time: (valid_from, units_per_count).

    Before the first valid_from the first entry applies (the history starts with the machine).
    """

    entries: tuple[tuple[dt.datetime, float], ...]
    units: tuple[tuple[dt.datetime, int], ...] = ((_EPOCH, 1),)
    # valid_from of each entry, for bisection: asked per count event (thousands per raw edge)
    _starts: tuple[dt.datetime, ...] = field(init=False, repr=False, compare=False)
    _unit_starts: tuple[dt.datetime, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.entries or any(c <= 0 for _, c in self.entries):
            raise ValueError("a cycle history needs at least one positive ideal cycle time")
        if not self.units or any(u <= 0 for _, u in self.units):
            raise ValueError("a units history needs at least one positive units per count")
        entries, units = tuple(sorted(self.entries)), tuple(sorted(self.units))
        object.__setattr__(self, "entries", entries)
        object.__setattr__(self, "_starts", tuple(v for v, _ in entries))
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "_unit_starts", tuple(v for v, _ in units))

    @classmethod
    def constant(cls, ideal_cycle_s: float, units_per_count: int = 1) -> CycleHistory:
        return cls(((_EPOCH, ideal_cycle_s),), ((_EPOCH, units_per_count),))

    def units_at(self, t: dt.datetime) -> int:
        """The units per count valid at instant t."""
        if len(self.units) == 1:
            return self.units[0][1]
        return self.units[max(0, bisect.bisect_right(self._unit_starts, t) - 1)][1]

    def units_over(self, start: dt.datetime, end: dt.datetime) -> int | None:
        """The units per count valid at every instant of [start, end), None if it changes."""
        if any(start < valid_from < end for valid_from in self._unit_starts):
            return None
        return self.units_at(start)

    def _index(self, t: dt.datetime) -> int:
        return max(0, bisect.bisect_right(self._starts, t) - 1)

    def at(self, t: dt.datetime) -> float:
        """The ideal cycle time valid at instant t."""
        if len(self.entries) == 1:
            return self.entries[0][1]
        return self.entries[self._index(t)][1]

    def fastest(self, t0: dt.datetime, t1: dt.datetime) -> float:
        """The smallest ideal cycle time valid at some instant of [t0, t1]."""
        if len(self.entries) == 1:
            return self.entries[0][1]
        lo, hi = self._index(t0), self._index(t1)
        return min(c for _, c in self.entries[lo : hi + 1])


class CountKind(StrEnum):
    COUNT = "count"
    WRAP = "wrap"
    RESET = "reset"
    GLITCH = "glitch"  # delta dropped (0)


@dataclass(slots=True)
class CountEvent:
    time: dt.datetime
    delta: int
    kind: CountKind = CountKind.COUNT
    after: dt.datetime | None = None  # the sample it was counted from (None: none before)


# KPI.md §2: a jump above elapsed / ideal cycle x PLAUSIBLE_RATE + PLAUSIBLE_EXTRA is a glitch.
# storage.rollups builds its server-side check from these two.
PLAUSIBLE_RATE = 1.5
PLAUSIBLE_EXTRA = 10  # so a step of up to this many parts is always plausible


def plausible_max(elapsed_s: float, ideal_cycle_s: float) -> float:
    """KPI.md §2: the largest believable increase over `elapsed_s`."""
    return elapsed_s / ideal_cycle_s * PLAUSIBLE_RATE + PLAUSIBLE_EXTRA


def count_value(value: float | None) -> int | None:
    """The count a counter sample stands for: its value rounded (half to even); None for no
    count (a null, NaN or ±inf: an OPC UA Double or a Modbus float32 bit pattern)."""
    return round(value) if value is not None and math.isfinite(value) else None


def _step(
    prev: tuple[dt.datetime, int],
    cur: tuple[dt.datetime, int],
    cycles: CycleHistory,
    wrap: int | None,
) -> CountEvent:
    (t0, v0), (t1, v1) = prev, cur
    limit = plausible_max((t1 - t0).total_seconds(), cycles.fastest(t0, t1))
    d, kind = v1 - v0, CountKind.COUNT
    if d < 0:
        wrapped = v1 + wrap - v0 if wrap is not None and 0 <= v1 < wrap and v0 < wrap else None
        if wrapped is not None and wrapped <= limit:
            d, kind = wrapped, CountKind.WRAP
        else:
            d, kind = v1, CountKind.RESET
    if d < 0 or d > limit:
        return CountEvent(t1, 0, CountKind.GLITCH, t0)
    return CountEvent(t1, d, kind, t0)


_sample_time = operator.itemgetter(0)


def _clean(samples: Sequence[Sample]) -> list[tuple[dt.datetime, int]]:
    """(time, count value) of the samples that have one, by time."""
    counted = ((t, count_value(v)) for t, v in samples)
    return sorted([(t, n) for t, n in counted if n is not None], key=_sample_time)


def cumulative_deltas(
    samples: Sequence[Sample], *, cycles: CycleHistory, wrap: int | None = None
) -> list[CountEvent]:
    """Deltas of a cumulative counter, one event per sample after the first (null samples skipped)."""
    events: list[CountEvent] = []
    baseline: tuple[dt.datetime, int] | None = None
    candidate: tuple[dt.datetime, int] | None = None
    count = CountKind.COUNT
    for cur in _clean(samples):
        if baseline is None:
            baseline = cur
            continue
        d = cur[1] - baseline[1]
        if 0 <= d <= PLAUSIBLE_EXTRA:
            # what _step gives (the plausible maximum is never below PLAUSIBLE_EXTRA), without
            # its calls: nearly every step of a counter sampled at 1 Hz
            events.append(CountEvent(cur[0], d, count, baseline[0]))
            baseline, candidate = cur, None
            continue
        ev = _step(baseline, cur, cycles, wrap)
        if ev.kind is CountKind.GLITCH and candidate is not None:
            retry = _step(candidate, cur, cycles, wrap)
            if retry.kind is not CountKind.GLITCH:
                ev = retry  # the earlier jump was a level change; go on from the new level
        if ev.kind is CountKind.GLITCH:
            candidate = cur
        else:
            baseline, candidate = cur, None
        events.append(ev)
    return events


def increments(samples: Sequence[Sample]) -> list[CountEvent]:
    """A delta counter: each message carries its increment, summed as it is."""
    count = CountKind.COUNT
    clean = _clean(samples)
    before = [None, *(t for t, _ in clean)]
    return [CountEvent(t, v, count, b) for (t, v), b in zip(clean, before, strict=False)]


_KIND_FLAG = {
    CountKind.RESET: "counter_resets",
    CountKind.WRAP: "counter_wraps",
    CountKind.GLITCH: "counter_glitches",
}


N = TypeVar("N", int, float)


def _opt_add(a: N | None, b: N | None) -> N | None:
    if a is None:
        return b
    return a if b is None else a + b


@dataclass(slots=True)
class Counts:
    """Additive count sums of one machine; None = that counter is not configured.

    `ideal_*_s` is Σ delta x ideal cycle valid at the delta's timestamp, per counter, and
    `*_units` Σ delta x units per count valid then (KPI.md §4: the line's units).
    """

    good: int | None = None
    reject: int | None = None
    total: int | None = None
    ideal_good_s: float | None = None
    ideal_reject_s: float | None = None
    ideal_total_s: float | None = None
    flags: FlagCounts = field(default_factory=dict)
    good_units: int | None = None
    reject_units: int | None = None
    total_units: int | None = None

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            _opt_add(self.good, other.good),
            _opt_add(self.reject, other.reject),
            _opt_add(self.total, other.total),
            _opt_add(self.ideal_good_s, other.ideal_good_s),
            _opt_add(self.ideal_reject_s, other.ideal_reject_s),
            _opt_add(self.ideal_total_s, other.ideal_total_s),
            add_flags(self.flags, other.flags),
            _opt_add(self.good_units, other.good_units),
            _opt_add(self.reject_units, other.reject_units),
            _opt_add(self.total_units, other.total_units),
        )

    def completed(self) -> Counts:
        """With the third of good/reject/total derived; flags `count_mismatch` /
        `counts_incomplete`. Derive only from window sums, never per bucket and then add."""
        g, r, t = self.good, self.reject, self.total
        ig, ir, it = self.ideal_good_s, self.ideal_reject_s, self.ideal_total_s
        ug, ur, ut = self.good_units, self.reject_units, self.total_units
        flags = dict(self.flags)
        if g is not None and r is not None and t is not None:
            if g + r != t:
                flags["count_mismatch"] = 1
        elif g is not None and r is not None:
            t, it, ut = g + r, (ig or 0.0) + (ir or 0.0), (ug or 0) + (ur or 0)
        elif g is not None and t is not None:
            r, ir, ur = t - g, (it or 0.0) - (ig or 0.0), (ut or 0) - (ug or 0)
        elif r is not None and t is not None:
            g, ig, ug = t - r, (it or 0.0) - (ir or 0.0), (ut or 0) - (ur or 0)
        else:
            flags["counts_incomplete"] = 1
        if (g is not None and g < 0) or (r is not None and r < 0):
            # counters sampled apart can disagree by a part at a window edge
            flags["count_mismatch"] = 1
            g, r = _floor0(g), _floor0(r)
            ig, ir = _floor0(ig), _floor0(ir)
            ug, ur = _floor0(ug), _floor0(ur)
        return Counts(g, r, t, ig, ir, it, flags, ug, ur, ut)


def _floor0(x: N | None) -> N | None:
    return None if x is None else max(x, 0)


@dataclass(frozen=True)
class Gaps:
    """A machine's data gaps (its timeline's `unknown` time, sorted disjoint spans), and how far
    back from a count they are looked for: KPI.md §2, a count whose interval spans unknown time
    is counted and flagged `counts_span_unknown`. The look-back is bounded so that every path
    (raw edges, rollup chunks) sees the same stretch of timeline before each count."""

    spans: Sequence[tuple[dt.datetime, dt.datetime]]
    lookback: dt.timedelta

    @cached_property
    def _ends(self) -> list[dt.datetime]:
        return [hi for _, hi in self.spans]

    def spanned(self, e: CountEvent) -> bool:
        """Whether the event's interval (after, time], its last `lookback`, overlaps a gap."""
        if e.after is None or not self.spans:
            return False
        lo = max(e.after, e.time - self.lookback)
        k = bisect.bisect_right(self._ends, lo)
        return k < len(self.spans) and self.spans[k][0] < e.time


NO_GAPS = Gaps((), dt.timedelta(0))


def _window(
    events: Sequence[CountEvent] | None,
    times: list[dt.datetime],
    cycles: CycleHistory,
    gaps: Gaps,
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[int | None, float | None, int | None, FlagCounts]:
    """(count, ideal seconds, line units, flags) of the events stamped inside [start, end)."""
    if events is None:
        return None, None, None, {}
    inside = events[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]
    flags: dict[str, int] = {}
    for e in inside:
        if e.kind in _KIND_FLAG:
            flags[_KIND_FLAG[e.kind]] = flags.get(_KIND_FLAG[e.kind], 0) + 1
    if gaps.spans:
        spanned = sum(1 for e in inside if e.delta and gaps.spanned(e))
        if spanned:
            flags["counts_span_unknown"] = spanned
    if len(cycles.entries) == 1:  # the same sum, without a lookup per event
        cycle = cycles.entries[0][1]
        ideal = sum(e.delta * cycle for e in inside)
    else:
        ideal = sum(e.delta * cycles.at(e.time) for e in inside)
    count = sum(e.delta for e in inside)
    per = cycles.units_over(start, end)
    units = (
        count * per if per is not None else sum(e.delta * cycles.units_at(e.time) for e in inside)
    )
    return count, float(ideal), units, flags


@dataclass(frozen=True)
class CountStreams:
    """One machine's count events (sorted by time) per configured counter, with its cycle
    history; `window` sums the events stamped inside [start, end)."""

    cycles: CycleHistory
    good: Sequence[CountEvent] | None = None
    reject: Sequence[CountEvent] | None = None
    total: Sequence[CountEvent] | None = None
    gaps: Gaps = NO_GAPS

    @cached_property
    def _times(self) -> dict[str, list[dt.datetime]]:
        return {
            name: [e.time for e in events]
            for name in ("good", "reject", "total")
            if (events := getattr(self, name)) is not None
        }

    def window(self, start: dt.datetime, end: dt.datetime) -> Counts:
        (g, ig, ug, fg), (r, ir, ur, fr), (t, it, ut, ft) = (
            _window(
                getattr(self, name), self._times.get(name, []), self.cycles, self.gaps, start, end
            )
            for name in ("good", "reject", "total")
        )
        return Counts(g, r, t, ig, ir, it, add_flags(add_flags(fg, fr), ft), ug, ur, ut)
