"""A machine's state timeline (always from raw readings), and downtime by reason (Pareto) of a
machine or a line (`source` as for KPIs)."""

from __future__ import annotations

import datetime as dt
from typing import cast

import psycopg
from fastapi import APIRouter, Response

from api.deps import (
    Cfg,
    Engine,
    Entity,
    MachineId,
    Now,
    Results,
    SourceEngine,
    WindowParams,
    per_kind,
)
from api.models import Downtime, DowntimeClass, DowntimeRow, Timeline, TimelineInterval
from api.plant import reason_texts, resolve_scope, sourced_scope

MAX_TIMELINE_WINDOW = dt.timedelta(days=31)

router = APIRouter(tags=["stops"])


@router.get(
    "/machines/{machine}/timeline",
    response_model=Timeline,
    summary="Classified state intervals of a machine",
)
async def machine_timeline(
    machine: MachineId, window: WindowParams, cfg: Cfg, engine: Engine, now: Now, results: Results
) -> Response:
    _, w, ids = resolve_scope(engine.plant, "machine", machine, window, now, MAX_TIMELINE_WINDOW)
    texts = reason_texts(cfg)

    async def compute(conn: psycopg.AsyncConnection) -> Timeline:
        intervals = await engine.timeline(conn, machine, w.start, w.end, now=now)
        return Timeline(
            machine=machine,
            window=w,
            intervals=[
                TimelineInterval(
                    start=iv.start,
                    end=iv.end,
                    time_class=iv.time_class.value,
                    reason_code=iv.reason,
                    reason_text=texts.get(iv.reason) if iv.reason is not None else None,
                    short_stop=iv.short_stop,
                )
                for iv in intervals
            ],
        )

    return await results.answer(compute, window=w, machines=ids)


async def _downtime(
    of: Entity, window: WindowParams, engine: SourceEngine, now: Now, results: Results
) -> Response:
    kind, ident = of
    _, w, ids = sourced_scope(engine, kind, ident, window, now)

    async def compute(conn: psycopg.AsyncConnection) -> Downtime:
        rows = await engine.downtime(conn, kind, ident, w.start, w.end, now=now)
        return Downtime(
            kind=kind,
            id=ident,
            window=w,
            rows=[
                DowntimeRow(
                    reason_code=r.reason,
                    reason_text=r.text,
                    category=r.category,
                    time_class=cast(DowntimeClass, r.time_class),  # pydantic checks it
                    duration_s=r.duration_s,
                    events=r.events,
                    share=r.share,
                )
                for r in rows
            ],
        )

    return await results.answer(compute, window=w, machines=ids)


per_kind(
    router,
    "/downtime",
    _downtime,
    (
        "Stop time of a line's machines by reason, longest first",
        "Stop time of a machine by reason, longest first",
    ),
    response_model=Downtime,
)
