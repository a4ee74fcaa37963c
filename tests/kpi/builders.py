"""Raw inputs as a PLC and the collector would produce them, and the pipeline the storage
side will run on them, so tests state a plant story and check the figures."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

import pytest

from config.plant import Break, Calendar, ReasonCategory, Shift, StateClass, Weekday
from config.settings import KpiSettings
from kpi import (
    CountStreams,
    CycleHistory,
    Sums,
    build_timeline,
    calendar_time,
    context_margin,
    cumulative_deltas,
    data_gaps,
    window_sums,
)

RUN, DOWN, IDLE, PLANNED, SETUP = 1, 2, 3, 4, 5
STATE_MAP = {
    RUN: StateClass.RUNNING,
    DOWN: StateClass.DOWN,
    IDLE: StateClass.IDLE,
    PLANNED: StateClass.PLANNED_STOP,
    SETUP: StateClass.SETUP,
}
REASONS = {
    10: ReasonCategory.FAILURE,
    20: ReasonCategory.IDLE,
    30: ReasonCategory.SETUP,
    40: ReasonCategory.PLANNED,
}

Sample = tuple[dt.datetime, float | int | None]


def at(day: str, clock: str, tz: str = "UTC") -> dt.datetime:
    """A UTC instant from a local date and clock, e.g. at('2026-03-02', '06:00')."""
    local = dt.datetime.fromisoformat(f"{day}T{clock}")
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)


def calendar(
    start: str,
    end: str,
    breaks: Sequence[tuple[str, str]] = (),
    *,
    tz: str = "UTC",
    days: Sequence[Weekday] | None = None,
    name: str = "early",
) -> Calendar:
    shift = Shift(
        name=name,
        start=start,
        end=end,
        days=list(days or list(Weekday)[:5]),
        breaks=[Break(start=b, end=e) for b, e in breaks],
    )
    return Calendar(timezone=tz, shifts=[shift])


def heartbeat(
    changes: Sequence[tuple[dt.datetime, int | None]], until: dt.datetime, every_s: float = 30
) -> list[Sample]:
    """State samples: each change, then the same value re-recorded every `every_s` seconds."""
    out: list[Sample] = []
    step = dt.timedelta(seconds=every_s)
    for i, (t, v) in enumerate(changes):
        nxt = changes[i + 1][0] if i + 1 < len(changes) else until
        cur = t
        while cur < nxt:
            out.append((cur, v))
            cur += step
    return out


def counter(
    first: dt.datetime,
    increments: Sequence[int],
    *,
    step_s: float = 60,
    start_value: int = 0,
    wrap: int | None = None,
) -> list[Sample]:
    """Cumulative counter: a baseline sample at `first`, then one sample per step."""
    value, out = start_value, [(first, start_value)]
    for k, inc in enumerate(increments):
        value += inc
        if wrap:
            value %= wrap
        out.append((first + dt.timedelta(seconds=step_s * (k + 1)), value))
    return out


def spread(n: int, slots: int) -> list[int]:
    """n parts over `slots` samples; the first samples take the remainder."""
    q, r = divmod(n, slots)
    return [q + (1 if k < r else 0) for k in range(slots)]


def machine_sums(
    *,
    states: Sequence[Sample],
    start: dt.datetime,
    end: dt.datetime,
    cal: Calendar | None,
    counters: Mapping[str, Sequence[Sample]] | None = None,
    cycles: CycleHistory | float = 1.0,
    reasons: Sequence[Sample] = (),
    settings: KpiSettings | None = None,
    wrap: int | None = None,
) -> Sums:
    """The whole path for one machine and one window, as storage will run it."""
    settings = settings or KpiSettings()
    if not isinstance(cycles, CycleHistory):
        cycles = CycleHistory.constant(cycles)
    margin = context_margin(settings)
    intervals = build_timeline(
        states,
        reasons,
        state_map=STATE_MAP,
        reason_categories=REASONS,
        since=start - margin,
        until=end + margin,
        settings=settings,
    )
    streams = CountStreams(
        cycles,
        **{k: cumulative_deltas(v, cycles=cycles, wrap=wrap) for k, v in (counters or {}).items()},
        gaps=data_gaps(intervals, settings),
    )
    cal_time = calendar_time(cal, start, end) if cal else None
    return window_sums(intervals, start, end, calendar=cal_time, counts=streams)


def assert_sums_equal(a: Sums, b: Sums) -> None:
    """Field by field: seconds to 1e-6, counts and flags exactly."""
    for part in ("times", "counts"):
        x, y = getattr(a, part), getattr(b, part)
        for f in dataclasses.fields(x):
            vx, vy = getattr(x, f.name), getattr(y, f.name)
            if isinstance(vx, float) or isinstance(vy, float):
                assert vx == pytest.approx(vy, abs=1e-6), f"{part}.{f.name}"
            else:
                assert vx == vy, f"{part}.{f.name}"
