"""The collector: every source's adapter -> router -> pipeline -> database (or spool), plus the
periodic jobs around it (state heartbeat, rollups, retention, rates for /healthz).

Start-up does not need the database: with the database away the collector spools from the
first reading and migrates, syncs the plant and replays once it answers. A restart with a
non-empty spool replays it the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from adapters.base import Adapter, Reading
from adapters.registry import create_adapter
from collector.dbsink import DatabaseSink
from collector.health import Rates, prometheus, snapshot
from collector.heartbeat import StateHeartbeat
from collector.pipeline import Pipeline
from collector.routing import TagRouter
from collector.spool import Spool
from config import ShopfloorConfig
from storage import retention, rollups
from storage.cluster import default_base_dir

log = logging.getLogger(__name__)

# Sources whose messages are acknowledged (MQTT QoS 1/2): their sink returns only once the
# readings are durable. Polled and subscribed sources cannot be asked again anyway.
ACKNOWLEDGED_PROTOCOLS = frozenset({"mqtt"})


def default_spool_dir() -> Path:
    return default_base_dir().parent / "spool"


class Collector:
    def __init__(self, cfg: ShopfloorConfig, database_url: str, *, spool_dir: Path | None = None):
        self.cfg = cfg
        s = cfg.settings.collector
        directory = spool_dir or s.spool_dir or default_spool_dir()
        self.spool = Spool(
            directory, max_bytes=int(s.spool_max_mb * 1024 * 1024), on_full=s.spool_on_full
        )
        self.db = DatabaseSink(cfg, database_url)
        self.pipeline = Pipeline(s, self.db, self.spool)
        self.heartbeat = StateHeartbeat(cfg.settings.kpi.heartbeat_s)
        self.router = TagRouter(cfg, self.heartbeat)
        self.rates = Rates()
        self.adapters: list[Adapter] = [
            create_adapter(source, self._sink(source.name, source.protocol))
            for source in cfg.sources
        ]
        self.rollups_at: dt.datetime | None = None
        self.rollups_error: str | None = None
        self._stop = asyncio.Event()
        if len(self.spool):
            log.warning(
                "spool holds %d readings from before: replaying when the database answers",
                self.spool.stats().rows,
            )

    def _sink(self, source: str, protocol: str) -> Callable[[Sequence[Reading]], Awaitable[None]]:
        durable = protocol in ACKNOWLEDGED_PROTOCOLS
        router, pipeline = self.router, self.pipeline

        async def sink(readings: Sequence[Reading]) -> None:
            await pipeline.submit(router.rows(readings), durable=durable)

        return sink

    def health(self) -> dict[str, Any]:
        return snapshot(self)

    def metrics(self) -> str:
        return prometheus(snapshot(self))

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Run until `stop()`: then stop the adapters, store what is queued, and return."""
        writer = asyncio.create_task(self.pipeline.run(), name="pipeline")
        await self.db.connect()  # early, so the first batch need not wait; failure is fine
        adapters = [
            asyncio.create_task(a.run(), name=f"adapter-{a.status.source}") for a in self.adapters
        ]
        jobs = [
            asyncio.create_task(self._every(1.0, self._tick), name="heartbeat"),
            asyncio.create_task(
                self._every(self.cfg.settings.rollups.interval_s, self._rollups), name="rollups"
            ),
            asyncio.create_task(
                self._every(self.cfg.settings.retention.interval_s, self._retention),
                name="retention",
            ),
        ]
        if ready is not None:
            ready.set()
        try:
            await self._stop.wait()
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*(a.stop() for a in self.adapters), return_exceptions=True)
            await asyncio.gather(*adapters, return_exceptions=True)
            await self.pipeline.close()
            await writer
            await asyncio.gather(*jobs, return_exceptions=True)
            await self.db.close()
            self.pipeline.shutdown()
            self.spool.close()
            log.info("collector stopped")

    def stop(self) -> None:
        self._stop.set()

    async def _every(self, period_s: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:  # a periodic job must not take the collector down
                log.exception("%s failed", getattr(job, "__name__", job))
            await asyncio.sleep(period_s)

    async def _tick(self) -> None:
        """Each second: re-record held states of connected sources; sample reading rates."""
        for a in self.adapters:
            name = a.status.source
            if not a.status.connected:
                self.heartbeat.forget(name)
                continue
            rows = self.heartbeat.due(name)
            if rows:
                await self.pipeline.submit(rows)
        self.rates.sample({a.status.source: a.status.readings for a in self.adapters})

    async def _rollups(self) -> None:
        if not self.db.up:
            return  # the last outcome stays in /healthz
        now = dt.datetime.now(dt.UTC)
        self.rollups_error = await self._with_database(
            "rollup refresh", lambda conn: rollups.refresh(conn, self.cfg, now=now)
        )
        if self.rollups_error is None:
            self.rollups_at = now

    async def _retention(self) -> None:
        settings = self.cfg.settings.retention
        await self._with_database(
            "retention run",
            lambda conn: retention.enforce(conn, settings, now=dt.datetime.now(dt.UTC)),
        )

    async def _with_database(
        self, what: str, job: Callable[[psycopg.AsyncConnection], Awaitable[object]]
    ) -> str | None:
        """Run a periodic database job on its own connection while the database is up; a
        failure is logged and returned, and the job runs again at its next interval."""
        if not self.db.up:
            return None
        try:
            async with await psycopg.AsyncConnection.connect(self.db.url, autocommit=True) as conn:
                await job(conn)
        except (psycopg.Error, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s failed (retried next interval): %s", what, error)
            return error
        return None
