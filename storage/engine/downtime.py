"""Downtime by stop reason (a Pareto), from the raw timeline: rows keyed by (reason, class),
over productive calendar time only, the time the KPIs' stop figures use, so a machine's `down`
rows add up to its `down_time_s` (docs/engine.md, "Downtime Pareto").
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from config.plant import StopReason
from kpi import Interval, TimeClass
from kpi.spans import Span, clip

STOP_ROW_CLASSES = frozenset(
    {TimeClass.DOWN, TimeClass.IDLE, TimeClass.SETUP, TimeClass.PLANNED_STOP}
)


@dataclass(frozen=True)
class DowntimeRow:
    reason: int | None  # stop reason code; None: the PLC gave no (known) reason
    text: str | None  # the reason's text from the reason table
    category: str | None  # the reason's category (failure, idle, setup, planned)
    time_class: str  # down, idle, setup, planned_stop or short_stop
    duration_s: float
    events: int
    share: float  # of all rows' duration; 0 when there is no stop time at all


def downtime_rows(
    timelines: Iterable[Sequence[Interval]],
    productive: Sequence[Span],
    reasons: Mapping[int, StopReason],
) -> list[DowntimeRow]:
    """Pareto rows over the machines' timelines, sorted by duration (then events) descending.
    `productive`: sorted disjoint spans (CalendarTime.planned)."""
    acc: dict[tuple[int | None, str], list[float]] = {}
    spans = list(productive)
    for (_, b), (c, _) in itertools.pairwise(spans):
        if c < b:
            raise ValueError(f"productive spans must be sorted and disjoint: {c} < {b}")
    ends = [hi for _, hi in spans]
    for intervals in timelines:
        for iv in intervals:
            if iv.time_class not in STOP_ROW_CLASSES:
                continue
            inside = 0.0
            # the spans overlapping the interval, found by bisection: a week's timeline has
            # thousands of stops and the calendar hundreds of productive spans
            for k in range(bisect.bisect_right(ends, iv.start), len(spans)):
                part = clip((iv.start, iv.end), *spans[k])
                if part is None:
                    break
                inside += (part[1] - part[0]).total_seconds()
            if inside <= 0:
                continue
            cls = "short_stop" if iv.short_stop else iv.time_class.value
            row = acc.setdefault((iv.reason, cls), [0.0, 0])
            row[0] += inside
            row[1] += 1
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
