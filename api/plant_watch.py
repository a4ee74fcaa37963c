"""A central API's plant: every active line in the database, reloaded when an edge syncs.

`shopfloor serve` with a config that declares no lines serves the plant model the edges wrote
(storage.plant_model). It reads it at start and then asks every PLANT_CHECK_S whether the plant
revision moved (one sequence read); a new model replaces the engines and empties the result
cache. While the database has never answered, /api/v1 answers 503: "no such line" would be a lie.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from fastapi import FastAPI, Request
from psycopg_pool import AsyncConnectionPool

from api.errors import ApiError
from config import ShopfloorConfig
from config.health import PlantHealth
from storage import plant_model
from storage.engine import KpiEngine

log = logging.getLogger(__name__)

PLANT_CHECK_S = 2.0


def install(app: FastAPI, cfg: ShopfloorConfig) -> None:
    """The engines (and the config they read) for `cfg`; cached answers of another plant go."""
    app.state.cfg = cfg
    app.state.engines = {"auto": KpiEngine(cfg), "raw": KpiEngine(cfg, use_rollups=False)}
    cache = getattr(app.state, "cache", None)
    if cache is not None:
        cache.clear()


class PlantWatch:
    def __init__(self, app: FastAPI, cfg: ShopfloorConfig) -> None:
        self.app = app
        self.base = cfg  # settings (and nothing else) from the central API's own config
        self.revision: int | None = None
        self.edges: list[str] = []
        self.loaded_at: dt.datetime | None = None
        self.last_error: str | None = None
        self._warned: set[str] = set()

    def health(self) -> PlantHealth:
        return {
            "lines": len(self.app.state.cfg.lines),
            "edges": self.edges,
            "revision": self.revision,
            "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
            "last_error": self.last_error,
        }

    async def run(self, pool: AsyncConnectionPool) -> None:
        """Until cancelled."""
        while True:
            await asyncio.sleep(PLANT_CHECK_S)
            await self.attempt(pool)

    async def attempt(self, pool: AsyncConnectionPool, timeout_s: float | None = None) -> None:
        """`check`; a failure is logged once (and once when it works again)."""
        try:
            await asyncio.wait_for(self.check(pool), timeout_s)
        except Exception as exc:  # the database away, or a model we cannot read
            error = f"{type(exc).__name__}: {exc}".strip()
            if self.last_error is None:
                log.warning("plant model not read from the database: %s", error)
            self.last_error = error

    async def check(self, pool: AsyncConnectionPool) -> None:
        async with pool.connection() as conn:
            if await plant_model.revision(conn) == self.revision:
                self._recovered()
                return
            model = await plant_model.load(conn)
        cfg = self.base.model_copy(
            update={
                "lines": model.lines,
                "calendars": model.calendars,
                "stop_reasons": model.stop_reasons,
            }
        )
        install(self.app, cfg)
        self.revision, self.edges = model.revision, sorted(model.edge_kpi)
        self.loaded_at = dt.datetime.now(dt.UTC)
        self._recovered()
        log.info(
            "plant model read: %d line(s) of %d edge(s), revision %d",
            len(model.lines),
            len(model.edge_kpi),
            model.revision,
        )
        self._compare_kpi(model)

    def _recovered(self) -> None:
        if self.last_error is not None:
            log.info("plant model read from the database again")
            self.last_error = None

    def _compare_kpi(self, model: plant_model.PlantModel) -> None:
        """Rollups are classified with each edge's settings.kpi, raw edges of a window with
        ours: a difference makes this API's KPIs differ from the edge's own. Said once."""
        ours = self.base.settings.kpi.model_dump()
        for edge, kpi in model.edge_kpi.items():
            theirs = kpi.model_dump()
            for key in sorted(k for k in ours if ours[k] != theirs.get(k)):
                note = f"{edge}.{key}"
                if note not in self._warned:
                    self._warned.add(note)
                    log.warning(
                        "edge %r uses settings.kpi.%s = %s, this API %s: set them alike, or its "
                        "KPIs here differ from its own",
                        edge,
                        key,
                        theirs.get(key),
                        ours[key],
                    )


async def require_plant(request: Request) -> None:
    """A central API that has never read the plant answers 503, with the reason."""
    watch: PlantWatch | None = request.app.state.plant_watch
    if watch is not None and watch.revision is None:
        raise ApiError(
            503,
            "database_unavailable",
            "the plant model has not been read from the database yet: "
            + (watch.last_error or "trying"),
        )
