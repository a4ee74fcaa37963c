"""/healthz and /metrics: open without a key, so probes and Prometheus need no secret.

With a collector in the process (`shopfloor run`) they report its pipeline, spool and sources;
API-only (`shopfloor serve`) they report whether the database answers. /metrics is the app's
prometheus_client registry (`app.state.metrics`: the collector's report and the result cache),
collected at each scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from config.health import Health

router = APIRouter(tags=["health"])


class HealthSource(Protocol):
    """A collector in the process: its report, and the report as metrics."""

    def health(self) -> Health: ...

    @property
    def prometheus(self) -> Collector: ...


async def _database_answers(request: Request) -> tuple[bool, str | None]:
    try:
        async with request.app.state.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # any failure is the answer we report
        return False, f"{type(exc).__name__}: {exc}"
    return True, None


async def _report(request: Request) -> Health:
    source: HealthSource | None = request.app.state.health
    if source is not None:
        return source.health()
    ok, error = await _database_answers(request)
    report: Health = {
        "status": "ok" if ok else "failing",
        "problems": [] if ok else [f"database unavailable: {error}"],
        "database": {"connected": ok, "last_error": error},
    }
    watch = request.app.state.plant_watch
    if watch is not None:
        report["plant"] = plant = watch.health()
        if plant["revision"] is None:
            report["status"] = "failing"
            report["problems"].append(
                f"plant model not read from the database yet: {plant['last_error'] or 'trying'}"
            )
    return report


@router.get(
    "/healthz",
    response_model=Health,
    summary="Health of the database, spool, pipeline and sources",
    responses={503: {"model": Health, "description": "failing: `problems` says why"}},
)
async def healthz(request: Request) -> Response:
    report = await _report(request)
    return JSONResponse(report, status_code=503 if report["status"] == "failing" else 200)


class _Scrape:
    """One scrape: families read first (what had to be awaited), then the app's registry."""

    def __init__(self, first: list[Metric], registry: CollectorRegistry) -> None:
        self.first, self.registry = first, registry

    def collect(self) -> Iterator[Metric]:
        yield from self.first
        yield from self.registry.collect()


@router.get(
    "/metrics", summary="The same in Prometheus text format", response_class=PlainTextResponse
)
async def metrics(request: Request) -> Response:
    state = request.app.state
    first: list[Metric] = []
    if state.health is None:
        ok, _ = await _database_answers(request)
        text = "the API can query the database"
        first.append(GaugeMetricFamily("shopfloor_database_up", text, value=int(ok)))
    body = generate_latest(_Scrape(first, state.metrics))
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
