"""Classified state timeline of one machine (KPI.md §1), built from raw samples.

Rules, in the order they are applied:

1. Each state sample holds until the next one, but for at most ``max_gap_s``: after a longer
   silence the time from the last sample + ``max_gap_s`` to the next sample is ``unknown``.
   The last sample holds until ``until`` under the same rule. Before the first sample, and from
   a sample whose value is null (bad quality), the state is ``unknown``.
2. A PLC value missing from the machine's ``state_map`` (or not an integer) is ``unknown`` and
   marked ``unmapped``: no class is guessed, the time leaves PBT, and the KPI flags
   ``unmapped_state`` so the mapping gets fixed.
3. A stop reason explains one *run* of an unchanged PLC state value (a maximal stretch of
   equal values without a gap). Its reason is the last configured reason code among the value
   in effect at the run's start and the reason samples inside the run. So a reason set a few
   milliseconds after the state change, or entered by an operator during the stop, explains
   the whole stop; a code outside the reason table (e.g. 0, "no reason", written when the
   machine restarts, or by an operator acknowledging a fault while the machine is still
   stopped) never overrides a real one. The reason's category then decides the class, but only
   of non-running, known intervals: a reason never turns running time into a stop. A run that
   began before the samples given is explained by `run_reason` (found before them:
   storage.samples looks it up) unless a sample given names a later reason; one that goes on
   after them by `end_reason` (the last reason found after them), if any.
4. Equal neighbours (same class, reason and unmapped mark) are merged.
5. Each whole merged interval is classified once: a ``down``/``idle``/``setup`` interval shorter
   than ``short_stop_s`` is a short stop. Clipping to windows happens afterwards and keeps it.

To classify the intervals at a window's edges correctly, build the timeline with samples
from ``since = window start - context_margin`` to ``until = window end + context_margin`` (capped
at now), including the last sample before ``since``: an interval that reaches past the margin is
then long enough not to be a short stop, whatever lies beyond. An interval still open at ``now``
is classified by its length so far.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from config.plant import ReasonCategory, StateClass
from config.settings import KpiSettings
from kpi.counts import Gaps

Sample = tuple[dt.datetime, float | int | None]

_UNMAPPED = object()  # a PLC value the state map does not know


class TimeClass(StrEnum):
    """StateClass plus `unknown` (no data, or a value that maps to nothing)."""

    RUNNING = "running"
    DOWN = "down"
    IDLE = "idle"
    SETUP = "setup"
    PLANNED_STOP = "planned_stop"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, state: StateClass) -> TimeClass:
        return cls(state.value)


STOP_CLASSES = frozenset({TimeClass.DOWN, TimeClass.IDLE, TimeClass.SETUP})


@dataclass(frozen=True, slots=True)
class Interval:
    """A stretch of one class. `short_stop` was decided on the whole, unclipped interval."""

    start: dt.datetime
    end: dt.datetime
    time_class: TimeClass
    reason: int | None = None
    short_stop: bool = False
    unmapped: bool = False

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def context_margin(settings: KpiSettings) -> dt.timedelta:
    """How far beyond a window's edges samples must be fetched to classify edge intervals
    (short_stop_s), and to see the data gaps a count's interval may span (max_gap_s)."""
    return dt.timedelta(seconds=settings.short_stop_s + settings.max_gap_s)


def data_gaps(intervals: Sequence[Interval], settings: KpiSettings) -> Gaps:
    """The timeline's `unknown` time for lack of data (not unmapped values), as count flags
    look it up (kpi.counts.Gaps), up to the context margin back from each count."""
    spans = [
        (iv.start, iv.end)
        for iv in intervals
        if iv.time_class is TimeClass.UNKNOWN and not iv.unmapped
    ]
    return Gaps(spans, context_margin(settings))


def _as_code(value: float | int | None) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if float(value).is_integer():
        return int(value)
    return _UNMAPPED


def _dedupe(
    samples: Sequence[Sample], until: dt.datetime
) -> tuple[list[dt.datetime], list[object]]:
    """(times, codes) of the samples before `until`, sorted by time; of equal timestamps the
    last one given wins."""
    # Samples already in strictly increasing time order (what the database gives) skip the
    # dict and the sort, codes are computed once per distinct value (heartbeats repeat a few
    # values), and two lists instead of a tuple per sample keep the garbage collector out of it.
    times = [t for t, _ in samples]
    if all(map(operator.lt, times, itertools.islice(times, 1, None))):
        n = bisect.bisect_left(times, until)
        del times[n:]
        values = [v for _, v in samples[:n]]
        cache = {v: _as_code(v) for v in set(values)}
        return times, [cache[v] for v in values]
    by_time = {t: _as_code(v) for t, v in samples if t < until}  # later ones win
    ordered = sorted(by_time)
    return ordered, [by_time[t] for t in ordered]


def _runs(
    samples: tuple[list[dt.datetime], list[object]],
    since: dt.datetime,
    until: dt.datetime,
    gap: float,
) -> list[tuple[dt.datetime, dt.datetime, object]]:
    """Rule 1: (start, end, code) runs of equal code; code None means no data."""
    # Each sample gives the piece (t, held, code), and (held, next, None) after a silence
    # longer than the gap; touching pieces of equal code are merged. Done in one pass with the
    # open run kept mutable: one step per sample, no list of pieces.
    times, codes = samples
    runs: list[list[Any]] = []  # [start, end, code]
    last: list[Any] | None = None

    def push(start: dt.datetime, end: dt.datetime, code: object) -> None:
        nonlocal last
        if start >= end:
            return
        if last is not None and last[2] == code and last[1] == start:
            last[1] = end
        else:
            last = [start, end, code]
            runs.append(last)

    if not times or times[0] > since:
        push(since, times[0] if times else until, None)
    max_hold = dt.timedelta(seconds=gap)
    n = len(times)
    for i in range(n):
        t, code = times[i], codes[i]
        nxt = times[i + 1] if i + 1 < n else until
        held = t + max_hold
        if nxt <= held:
            held = nxt
        # inline push() of (t, held, code): the common case, a heartbeat extending its run
        if t < held:
            if last is not None and last[2] == code and last[1] == t:
                last[1] = held
            else:
                last = [t, held, code]
                runs.append(last)
        if held < nxt:
            push(held, nxt, None)
    return [(r[0], r[1], r[2]) for r in runs]


class _Reasons:
    """Reason samples with the lookup of rule 3."""

    def __init__(self, samples: Sequence[Sample], known: Mapping[int, ReasonCategory]) -> None:
        ordered = sorted(((t, _as_code(v)) for t, v in samples), key=lambda kv: kv[0])
        self._times = [t for t, _ in ordered]
        self._codes = [c for _, c in ordered]
        self._known = known

    def explaining(self, start: dt.datetime, end: dt.datetime) -> int | None:
        # Candidates: the sample in effect at `start`, then every sample in (start, end).
        lo = max(0, bisect.bisect_right(self._times, start) - 1)
        hi = bisect.bisect_left(self._times, end)
        for i in range(hi - 1, lo - 1, -1):
            code = self._codes[i]
            if isinstance(code, int) and code in self._known:
                return code
        return None


def build_timeline(
    states: Sequence[Sample],
    reasons: Sequence[Sample] = (),
    *,
    state_map: Mapping[int, StateClass],
    reason_categories: Mapping[int, ReasonCategory] | None = None,
    since: dt.datetime,
    until: dt.datetime,
    settings: KpiSettings | None = None,
    run_reason: int | None = None,
    end_reason: int | None = None,
) -> list[Interval]:
    """Classified, merged intervals covering [min(since, first sample), until).

    `run_reason`: the reason explaining the run in effect at the first sample, from reason
    samples before those given (rule 3); used when the samples given name none for it.
    `end_reason`: the last reason of the run still going on at `until`, from reason samples
    after those given; it explains that run (a later sample is the last one)."""
    settings = settings or KpiSettings()
    known = reason_categories or {}
    lookup = _Reasons(reasons, known)
    merged: list[Interval] = []
    times, codes = _dedupe(states, until)
    # the run it explains starts at the sample in effect at `since`
    first = times[0] if times and times[0] <= since and run_reason in known else None
    final = times[-1] if times and end_reason in known else None
    for start, end, code in _runs((times, codes), since, until, settings.max_gap_s):
        if code is None:
            iv = Interval(start, end, TimeClass.UNKNOWN)
        elif not isinstance(code, int) or code not in state_map:
            iv = Interval(start, end, TimeClass.UNKNOWN, unmapped=True)
        else:
            cls = TimeClass.of(state_map[code])
            reason = None if cls is TimeClass.RUNNING else lookup.explaining(start, end)
            if reason is None and start == first:
                reason = run_reason
            if final is not None and end == until and start <= final:
                reason = end_reason  # the run holding the last sample, going on at `until`
            if reason is not None:
                cls = TimeClass.of(known[reason].state_class)
            iv = Interval(start, end, cls, reason)
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.end == iv.start
            and (last.time_class, last.reason, last.unmapped)
            == (iv.time_class, iv.reason, iv.unmapped)
        ):
            merged[-1] = replace(last, end=iv.end)
        else:
            merged.append(iv)
    threshold = settings.short_stop_s
    return [
        replace(iv, short_stop=True)
        if iv.time_class in STOP_CLASSES and threshold > 0 and iv.seconds < threshold
        else iv
        for iv in merged
    ]


def clip_timeline(
    intervals: Sequence[Interval], start: dt.datetime, end: dt.datetime
) -> list[Interval]:
    """The intervals' parts inside [start, end); classifications are kept as they were."""
    out = []
    for iv in intervals:
        lo, hi = max(iv.start, start), min(iv.end, end)
        if lo < hi:
            out.append(replace(iv, start=lo, end=hi) if (lo, hi) != (iv.start, iv.end) else iv)
    return out
