"""Assembles the HTTP API: routers, error shape, auth, and the pool's life cycle.

    app = create_app(cfg, database_url=url)      # nothing connects until the lifespan starts
    await api.server.serve(app, cfg.settings.api)

/healthz, /metrics, /docs, /redoc, /openapi.json and the dashboard page at / are open (the page
asks for a key itself when the API needs one); everything under /api/v1 needs a bearer
token when `settings.api.api_keys` is set (see api.auth). Only then does the OpenAPI document
declare the bearer scheme and 401 answers: without keys there is no authentication to declare.

Every route refuses query parameters it does not declare (api.deps.refuse_unknown_query), after
the key check. KPI answers go through one result cache per app (api.cache, api.results); they
come from one of two engines, by the `source` parameter (api.deps.get_source_engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from api import dashboard, errors, plant_watch
from api import health as health_routes
from api.auth import require_key
from api.cache import ResultCache
from api.deps import refuse_unknown_query
from api.health import HealthSource
from api.models import ErrorResponse
from api.results import settle_margin
from api.routes import kpis, overview, plant, stops, tags
from config import ShopfloorConfig
from storage.engine.session import configure as engine_session

API_PREFIX = "/api/v1"
FIRST_PLANT_READ_S = 5.0

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "unknown line, machine or tag"},
    422: {
        "model": ErrorResponse,
        "description": "a parameter is missing, malformed, unusable or unknown",
    },
    503: {"model": ErrorResponse, "description": "the database is not reachable"},
}
_UNAUTHORIZED: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "missing or wrong bearer token"},
}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_app(
    cfg: ShopfloorConfig, *, database_url: str, health: HealthSource | None = None
) -> FastAPI:
    """The API for one plant configuration; the pool opens with the app's lifespan. `health`:
    the collector in this process, if any, for /healthz and /metrics."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=cfg.settings.database.pool_size,
            open=False,
            name="shopfloor-api",
            configure=engine_session,  # jit = off for our sessions only (docs/engine.md)
        )
        # Not waiting: the API starts (and /healthz says why it fails) while the database is
        # down; requests meanwhile get 503 database_unavailable.
        await pool.open(wait=False)
        app.state.pool = pool
        watching = None
        if watch is not None:
            # The first read before the first request where the database answers at once;
            # otherwise the watch keeps trying and /api/v1 answers 503 meanwhile.
            await watch.attempt(pool, FIRST_PLANT_READ_S)
            watching = asyncio.create_task(watch.run(pool), name="plant watch")
        try:
            yield
        finally:
            if watching is not None:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            await pool.close()

    app = FastAPI(
        docs_url=None,  # /docs and /redoc without a CDN: api.dashboard
        redoc_url=None,
        title=f"shopfloor API: {cfg.plant}",
        version="1",
        summary="Line and machine KPIs (KPI.md), state timelines, downtime and tag series",
        lifespan=lifespan,
    )
    app.state.health = health
    plant_watch.install(app, cfg)
    # A config without lines serves the plant of a central database (docs/scale.md).
    watch = plant_watch.PlantWatch(app, cfg) if not cfg.lines else None
    app.state.plant_watch = watch
    app.state.clock = _utc_now
    app.state.api_keys = [k.get_secret_value().encode() for k in cfg.settings.api.api_keys]
    app.state.cache = ResultCache(ttl_s=cfg.settings.api.cache_s)
    app.state.route_queries = {}  # api.query
    app.state.metrics = CollectorRegistry()  # this app's own, not the process-wide default
    if health is not None:
        app.state.metrics.register(health.prometheus)
    app.state.metrics.register(app.state.cache)
    app.state.settle_margin = settle_margin(cfg.settings.kpi)
    errors.install(app)
    # JSON compresses ~10x: a month's timeline or series crosses a plant's slow links in a
    # tenth of the time. Clients that do not ask (Accept-Encoding) get it plain.
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    strict = Depends(refuse_unknown_query)
    plant_read = [Depends(plant_watch.require_plant)] if watch is not None else []
    app.include_router(health_routes.router, dependencies=[strict], responses={422: _ERRORS[422]})
    keyed = bool(app.state.api_keys)
    for router in (plant.router, kpis.router, stops.router, tags.router, overview.router):
        app.include_router(
            router,
            prefix=API_PREFIX,
            dependencies=[Depends(require_key), strict, *plant_read]
            if keyed
            else [strict, *plant_read],
            responses={**_ERRORS, **_UNAUTHORIZED} if keyed else _ERRORS,
        )
    dashboard.install(app)
    return app
