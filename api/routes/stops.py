"""A machine's state timeline, and downtime by reason (Pareto) of a machine or a line."""

from __future__ import annotations

import datetime as dt
from typing import cast

import psycopg
from fastapi import APIRouter, Response

from api.deps import Cfg, Engine, Entity, MachineId, Now, Results, WindowParams, per_kind
from api.models import Downtime, DowntimeClass, DowntimeRow, Timeline, TimelineInterval
from api.plant import calendar_of, machine_ids, reason_texts
from api.windows import MAX_KPI_WINDOW, resolve_window

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
    cal = calendar_of(engine.plant, "machine", machine)
    w = resolve_window(window, cal, now, max_length=MAX_TIMELINE_WINDOW)
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

    return await results.answer(compute, window=w, machines=[machine])


async def _downtime(
    of: Entity, window: WindowParams, engine: Engine, now: Now, results: Results
) -> Response:
    kind, ident = of
    cal = calendar_of(engine.plant, kind, ident)
    w = resolve_window(window, cal, now, max_length=MAX_KPI_WINDOW)

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

    return await results.answer(compute, window=w, machines=machine_ids(engine.plant, kind, ident))


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
