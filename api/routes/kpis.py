"""KPIs of a line or a machine over a window, and per bucket (KPI.md field names)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

import psycopg
from fastapi import APIRouter, Query, Response

from api.deps import Engine, LineId, MachineId, Now, Results, WindowParams
from api.errors import BadParameter, shown
from api.models import KpiSeries, KpisOut, LineKpis, MachineKpis, SeriesPoint, Window
from api.plant import calendar_of, machine_ids
from api.windows import ResolvedWindow, resolve_window
from config.plant import Calendar
from kpi import Kpis, bucket_spans, parse_bucket
from storage.engine import Kind

MAX_KPI_WINDOW = dt.timedelta(days=366)
MAX_SERIES_BUCKETS = 3000

router = APIRouter(tags=["kpis"])

BucketParam = Annotated[
    str,
    Query(
        description="15m, 1h, any Nm/Nh dividing a day (aligned to the calendar's local clock), "
        "day (local midnight) or shift (one bucket per shift occurrence)",
        examples=["1h"],
    ),
]


def window_model(w: ResolvedWindow) -> Window:
    return Window(start=w.start, end=w.end, shift=w.shift, defaulted=w.defaulted)


def kpis_out(k: Kpis) -> KpisOut:
    return KpisOut.model_validate(k.as_dict())


def check_buckets(bucket: str, w: ResolvedWindow, cal: Calendar | None) -> None:
    """422 for a bucket the core does not know, or more buckets than one answer should hold."""
    try:
        kind = parse_bucket(bucket)
    except ValueError:
        raise BadParameter(
            ["query", "bucket"],
            f"bad bucket {shown(bucket)}: use 'day', 'shift' or e.g. 15m, 1h (dividing a day)",
        ) from None
    length = w.end - w.start
    if isinstance(kind, dt.timedelta):
        n = math.ceil(length / kind) + 1  # alignment to the local clock adds at most one
    elif kind == "day":
        n = length.days + 2
    else:
        n = len(bucket_spans(w.start, w.end, bucket, cal))
    if n > MAX_SERIES_BUCKETS:
        raise BadParameter(
            ["query", "bucket"],
            f"about {n} buckets of {bucket!r} in this window; at most {MAX_SERIES_BUCKETS}: "
            "use a larger bucket or a shorter window",
            "too_many_buckets",
        )


@router.get("/lines/{line}/kpis", response_model=LineKpis, summary="Line KPIs over a window")
async def line_kpis(
    line: LineId, window: WindowParams, engine: Engine, now: Now, results: Results
) -> Response:
    cal = calendar_of(engine.plant, "line", line)
    w = resolve_window(window, cal, now, max_length=MAX_KPI_WINDOW)

    async def compute(conn: psycopg.AsyncConnection) -> LineKpis:
        result = await engine.line(conn, line, w.start, w.end, now=now)
        return LineKpis(
            line=line,
            window=window_model(w),
            kpis=kpis_out(result.kpis),
            machines={m: kpis_out(k) for m, k in result.machines.items()},
        )

    return await results.answer(compute, window=w, machines=machine_ids(engine.plant, "line", line))


@router.get(
    "/machines/{machine}/kpis", response_model=MachineKpis, summary="Machine KPIs over a window"
)
async def machine_kpis(
    machine: MachineId, window: WindowParams, engine: Engine, now: Now, results: Results
) -> Response:
    cal = calendar_of(engine.plant, "machine", machine)
    w = resolve_window(window, cal, now, max_length=MAX_KPI_WINDOW)

    async def compute(conn: psycopg.AsyncConnection) -> MachineKpis:
        k = await engine.machine(conn, machine, w.start, w.end, now=now)
        return MachineKpis(machine=machine, window=window_model(w), kpis=kpis_out(k))

    return await results.answer(compute, window=w, machines=[machine])


async def _series(
    kind: Kind,
    ident: str,
    window: WindowParams,
    bucket: str,
    engine: Engine,
    now: dt.datetime,
    results: Results,
) -> Response:
    cal = calendar_of(engine.plant, kind, ident)
    w = resolve_window(window, cal, now, max_length=MAX_KPI_WINDOW)
    check_buckets(bucket, w, cal)

    async def compute(conn: psycopg.AsyncConnection) -> KpiSeries:
        rows = await engine.series(conn, kind, ident, w.start, w.end, bucket, now=now)
        return KpiSeries(
            kind=kind,
            id=ident,
            bucket=bucket,
            window=window_model(w),
            points=[
                SeriesPoint(start=b.start, end=b.end, label=b.label, kpis=kpis_out(k))
                for b, k in rows
            ],
        )

    return await results.answer(compute, window=w, machines=machine_ids(engine.plant, kind, ident))


@router.get("/lines/{line}/kpis/series", response_model=KpiSeries, summary="Line KPIs per bucket")
async def line_series(
    line: LineId,
    window: WindowParams,
    engine: Engine,
    now: Now,
    results: Results,
    bucket: BucketParam = "1h",
) -> Response:
    return await _series("line", line, window, bucket, engine, now, results)


@router.get(
    "/machines/{machine}/kpis/series", response_model=KpiSeries, summary="Machine KPIs per bucket"
)
async def machine_series(
    machine: MachineId,
    window: WindowParams,
    engine: Engine,
    now: Now,
    results: Results,
    bucket: BucketParam = "1h",
) -> Response:
    return await _series("machine", machine, window, bucket, engine, now, results)
