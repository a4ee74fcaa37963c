"""What the dashboard asks for that the resource routes would need many calls (or the calendar's
rules in the browser) to answer: every line's KPIs for its current shift with its machines'
states in one call, and a line's named windows (current shift, previous shift, today, ...)
resolved by its calendar at the API's "now"."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Response
from pydantic import Field

from api.deps import Cfg, Engine, LineId, Now, Results
from api.models import ApiModel, KpisOut, LineOut, UtcDatetime, Window
from api.plant import line_out
from api.routes.kpis import kpis_out
from api.windows import default_window, previous_shift
from config.plant import Calendar

router = APIRouter(tags=["overview"])

WindowKey = Literal["current_shift", "previous_shift", "today", "last_24h", "last_7d", "last_30d"]
_SPANS: tuple[tuple[WindowKey, str, dt.timedelta], ...] = (
    ("last_24h", "last 24 h", dt.timedelta(hours=24)),
    ("last_7d", "7 days", dt.timedelta(days=7)),
    ("last_30d", "30 days", dt.timedelta(days=30)),
)


class LineOverview(LineOut):
    timezone: str = Field(description="the calendar's time zone; UTC for a line without one")
    window: Window = Field(description="the line's current shift so far (the default window)")
    kpis: KpisOut = Field(description="the line's KPIs over `window`, as /lines/{line}/kpis")


class Overview(ApiModel):
    now: UtcDatetime = Field(description="the instant the answer was computed for")
    data: list[LineOverview]
    count: int


class NamedWindow(ApiModel):
    key: WindowKey
    label: str = Field(description="for a person: 'current shift (early)', 'today', ...")
    start: UtcDatetime
    end: UtcDatetime
    shift: str | None = Field(description="the shift's name for the shift windows")


class LineWindows(ApiModel):
    line: str
    timezone: str = Field(description="the calendar's time zone; UTC for a line without one")
    now: UtcDatetime
    windows: list[NamedWindow] = Field(description="pass a window's start and end to the routes")


def _timezone(cal: Calendar | None) -> str:
    return cal.timezone if cal is not None else "UTC"


def named_windows(cal: Calendar | None, now: dt.datetime) -> list[NamedWindow]:
    current = default_window(cal, now)
    previous = previous_shift(cal, current)
    local = now.astimezone(ZoneInfo(_timezone(cal)))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)

    shifts: tuple[tuple[WindowKey, str, Window], ...] = (
        ("current_shift", "current shift", current),
        ("previous_shift", "previous shift", previous),
    )
    out = [
        NamedWindow(
            key=key,
            label=f"{what} ({w.shift})" if w.shift else what,
            start=w.start,
            end=w.end,
            shift=w.shift,
        )
        for key, what, w in shifts
    ]
    if midnight < now:
        out.append(NamedWindow(key="today", label="today", start=midnight, end=now, shift=None))
    out += [
        NamedWindow(key=key, label=label, start=now - span, end=now, shift=None)
        for key, label, span in _SPANS
    ]
    return out


@router.get(
    "/overview",
    response_model=Overview,
    summary="Every line: its KPIs for the current shift and its machines' states",
    description="One call for the dashboard's plant overview; the same figures as "
    "/lines/{line}/kpis without start and end, and /lines/{line}.",
)
async def plant_overview(cfg: Cfg, engine: Engine, now: Now, results: Results) -> Response:
    async def compute(conn: psycopg.AsyncConnection) -> Overview:
        states = await engine.current_states(conn, now=now)
        lines = []
        for line in cfg.lines:
            cal = engine.plant.calendar(line)
            w = default_window(cal, now)
            k = await engine.line(conn, line.id, w.start, w.end, now=now)
            lines.append(
                LineOverview(
                    **dict(line_out(engine.plant, line, states)),
                    timezone=_timezone(cal),
                    window=w,
                    kpis=kpis_out(k.kpis),
                )
            )
        return Overview(now=now, data=lines, count=len(lines))

    return await results.answer(compute)


@router.get(
    "/lines/{line}/windows",
    response_model=LineWindows,
    summary="A line's named windows (current shift, previous shift, today, ...) at now",
    description="Resolved by the line's calendar in its time zone, so a client needs no "
    "calendar rules: pass a window's start and end to the KPI, series, timeline and downtime "
    "routes. `today` starts at local midnight (absent in the first instant of a day).",
)
async def line_windows(line: LineId, engine: Engine, now: Now) -> LineWindows:
    cal = engine.plant.calendar(engine.plant.line(line))
    return LineWindows(line=line, timezone=_timezone(cal), now=now, windows=named_windows(cal, now))
