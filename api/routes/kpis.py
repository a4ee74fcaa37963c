"""KPIs of a line or a machine over a window, and per bucket (KPI.md field names); `source=raw`
computes them from raw readings alone (api.deps.get_source_engine, docs/api.md)."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Query, Response

from api.deps import Entity, LineId, MachineId, Now, Results, SourceEngine, WindowParams, per_kind
from api.models import KpiSeries, KpisOut, LineKpis, MachineKpis, SeriesPoint
from api.plant import sourced_scope
from api.windows import check_kpi_buckets
from kpi import Kpis

router = APIRouter(tags=["kpis"])

BucketParam = Annotated[
    str,
    Query(
        description="15m, 1h, any Nm/Nh dividing a day (aligned to the calendar's local clock), "
        "day (local midnight) or shift (one bucket per shift occurrence)",
        examples=["1h"],
    ),
]


def kpis_out(k: Kpis) -> KpisOut:
    return KpisOut.model_validate(k.as_dict())


@router.get("/lines/{line}/kpis", response_model=LineKpis, summary="Line KPIs over a window")
async def line_kpis(
    line: LineId, window: WindowParams, engine: SourceEngine, now: Now, results: Results
) -> Response:
    _, w, ids = sourced_scope(engine, "line", line, window, now)

    async def compute(conn: psycopg.AsyncConnection) -> LineKpis:
        result = await engine.line(conn, line, w.start, w.end, now=now)
        machines = {m: kpis_out(k) for m, k in result.machines.items()}
        return LineKpis(line=line, window=w, kpis=kpis_out(result.kpis), machines=machines)

    return await results.answer(compute, window=w, machines=ids)


@router.get(
    "/machines/{machine}/kpis", response_model=MachineKpis, summary="Machine KPIs over a window"
)
async def machine_kpis(
    machine: MachineId, window: WindowParams, engine: SourceEngine, now: Now, results: Results
) -> Response:
    _, w, ids = sourced_scope(engine, "machine", machine, window, now)

    async def compute(conn: psycopg.AsyncConnection) -> MachineKpis:
        k = await engine.machine(conn, machine, w.start, w.end, now=now)
        return MachineKpis(machine=machine, window=w, kpis=kpis_out(k))

    return await results.answer(compute, window=w, machines=ids)


async def _series(
    of: Entity,
    window: WindowParams,
    engine: SourceEngine,
    now: Now,
    results: Results,
    bucket: BucketParam = "1h",
) -> Response:
    kind, ident = of
    cal, w, ids = sourced_scope(engine, kind, ident, window, now)
    check_kpi_buckets(bucket, w, cal)

    async def compute(conn: psycopg.AsyncConnection) -> KpiSeries:
        rows = await engine.series(conn, kind, ident, w.start, w.end, bucket, now=now)
        return KpiSeries(
            kind=kind,
            id=ident,
            bucket=bucket,
            window=w,
            points=[
                SeriesPoint(start=b.start, end=b.end, label=b.label, kpis=kpis_out(k))
                for b, k in rows
            ],
        )

    return await results.answer(compute, window=w, machines=ids)


per_kind(
    router,
    "/kpis/series",
    _series,
    ("Line KPIs per bucket", "Machine KPIs per bucket"),
    response_model=KpiSeries,
)
