"""The collector: every source's adapter -> router -> pipeline -> database (or spool), plus the
periodic jobs around it (state heartbeat, rollups, retention, rates for /healthz).

Start-up does not need the database: the collector spools from the first reading and
migrates, syncs the plant and replays once it answers. Every task runs under
`collector.supervisor`; when a critical one fails, `run()` raises `CollectorFailed` after the
same orderly stop, which always ends within `SHUTDOWN_S` (docs/collector.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import psycopg
from prometheus_client import generate_latest

from adapters.base import Adapter, Malformed, Reading
from adapters.registry import create_adapter
from collector.dbsink import DatabaseSink
from collector.health import HealthMetrics, Rates, snapshot
from collector.heartbeat import StateHeartbeat
from collector.pipeline import Pipeline
from collector.routing import TagRouter
from collector.rows import Rejected, render
from collector.spool import Spool
from collector.supervisor import CollectorFailed, Supervisor, describe
from config import ShopfloorConfig
from config.health import Health
from localenv.cluster import default_base_dir
from storage import retention, rollups
from storage.link import LINK_OPTIONS

log = logging.getLogger(__name__)

# Sources whose messages are acknowledged (MQTT QoS 1/2): their sink returns only once the
# readings are durable. Polled and subscribed sources cannot be asked again anyway.
ACKNOWLEDGED_PROTOCOLS = frozenset({"mqtt"})

SHUTDOWN_S = 30.0  # a stop ends within this (systemd's TimeoutStopSec is 60 s)
ADAPTERS_STOP_S = 10.0  # of which the adapters may take this much


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
        self.prometheus = HealthMetrics(self.health)
        self.supervisor = Supervisor(self._fatal)
        self.adapters: list[Adapter] = [
            create_adapter(source, self._sink(source.name, source.protocol), self._quarantine)
            for source in cfg.sources
        ]
        self.rollups_at: dt.datetime | None = None
        self.failure: str | None = None  # what stopped the collector, if a task did
        self._stop = asyncio.Event()
        if len(self.spool):
            log.warning(
                "spool holds %d readings from before: replaying when the database answers",
                self.spool.stats().rows,
            )

    def _sink(self, source: str, protocol: str) -> Callable[[Sequence[Reading]], Awaitable[None]]:
        durable = protocol in ACKNOWLEDGED_PROTOCOLS
        route, pipeline = self.router.route, self.pipeline

        async def sink(readings: Sequence[Reading]) -> None:
            rows, rejected = route(readings)
            await pipeline.submit(rows, rejected, durable=durable)

        return sink

    async def _quarantine(self, items: Sequence[Malformed]) -> None:
        """Malformed messages: kept in rejected_readings, durably, before they are acked."""
        rejected = [
            Rejected(m.ts, None, m.source, m.address, render(m.payload), m.reason) for m in items
        ]
        await self.pipeline.submit((), rejected, durable=True)

    def health(self) -> Health:
        return snapshot(self)

    def metrics(self) -> str:
        """`prometheus` (the report as metrics) in Prometheus text."""
        return generate_latest(self.prometheus).decode()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Run until `stop()`: then stop the adapters, store what is queued, and return.
        Raises CollectorFailed when a critical task failed (after the same orderly stop)."""
        sup = self.supervisor
        writer = sup.start("pipeline", self.pipeline.run, critical=True)
        await self.db.connect()  # early, so the first batch need not wait; failure is fine
        adapters = {
            sup.start(f"adapter {a.status.source}", a.run).get_name() for a in self.adapters
        }
        away = (psycopg.OperationalError, OSError)  # the database went away during a run
        jobs = {
            sup.every("heartbeat", 1.0, self._tick).get_name(),
            sup.every(
                "rollups", self.cfg.settings.rollups.interval_s, self._rollups, expected=away
            ).get_name(),
            sup.every(
                "retention", self.cfg.settings.retention.interval_s, self._retention, expected=away
            ).get_name(),
        }
        if ready is not None:
            ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(writer, adapters, jobs)
        if self.failure is not None:
            raise CollectorFailed(self.failure)

    def stop(self) -> None:
        self._stop.set()

    def _fatal(self, task: str, exc: BaseException) -> None:
        self.failure = f"{task} failed: {describe(exc)}"
        self._stop.set()

    async def _shutdown(
        self, writer: asyncio.Task[None], adapters: set[str], jobs: set[str]
    ) -> None:
        """Adapters stop, the pipeline stores what it holds, all within SHUTDOWN_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_S
        sup = self.supervisor
        sup.stopping = True
        await sup.cancel(jobs)
        stops = asyncio.gather(*(a.stop() for a in self.adapters), return_exceptions=True)
        try:
            await asyncio.wait_for(stops, ADAPTERS_STOP_S)
        except TimeoutError:
            log.error("adapters did not stop within %.0f s; cancelled", ADAPTERS_STOP_S)
        await sup.cancel(adapters)
        await self.pipeline.close()
        try:
            await asyncio.wait_for(asyncio.shield(writer), max(deadline - loop.time(), 1.0))
        except TimeoutError:
            log.error(
                "the pipeline did not finish within %.0f s: %d queued readings go to the spool",
                SHUTDOWN_S,
                self.pipeline.queued,
            )
            await sup.cancel({writer.get_name()})
        await self.db.close()
        self.pipeline.shutdown()
        self.spool.close()
        log.info("collector stopped")

    async def _tick(self) -> None:
        """Each second: sample reading rates; re-record held states of connected sources."""
        self.rates.sample({a.status.source: a.status.readings for a in self.adapters})
        for a in self.adapters:
            name = a.status.source
            if not a.status.connected:
                self.heartbeat.forget(name)
                continue
            rows = self.heartbeat.due(name)
            if rows:
                await self.pipeline.submit(rows)

    async def _rollups(self) -> None:
        now = dt.datetime.now(dt.UTC)
        if await self._with_database(lambda conn: rollups.refresh(conn, self.cfg, now=now)):
            self.rollups_at = now

    async def _retention(self) -> None:
        settings = self.cfg.settings.retention
        edge = self.cfg.settings.edge

        async def run(conn: psycopg.AsyncConnection) -> None:
            done = await retention.elected(conn, settings, edge=edge, now=dt.datetime.now(dt.UTC))
            if done.report is None:
                log.debug("retention skipped: %s", done.why)

        await self._with_database(run)

    async def _with_database(
        self, job: Callable[[psycopg.AsyncConnection], Awaitable[object]]
    ) -> bool:
        """Run a periodic database job on its own connection; False (skipped) while the
        database is away: its own health says so, and the job runs at its next interval."""
        if not self.db.up:
            return False
        async with await psycopg.AsyncConnection.connect(
            self.db.url, autocommit=True, **LINK_OPTIONS
        ) as conn:
            await job(conn)
        return True
