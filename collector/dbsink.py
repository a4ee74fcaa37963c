"""The collector's link to the database: connect (migrate and sync the plant once), map tag keys
to ids, write batches, and know when the database is away (with a reconnect backoff)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence

import psycopg

from collector.rows import DbRow, Rejected, Row, render
from config import ShopfloorConfig
from storage.link import LINK_OPTIONS
from storage.migrate import MigrationError, migrate
from storage.ownership import OwnershipConflict
from storage.plant_sync import sync_plant
from storage.writer import BatchWriter, Quarantined, WriteError, WriteResult

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0


class DatabaseDown(Exception):
    """The batch was not written; the caller spools it."""


class DatabaseSink:
    def __init__(self, cfg: ShopfloorConfig, url: str) -> None:
        self.cfg = cfg
        self.url = url
        self.write_timeout_s = cfg.settings.collector.write_timeout_s
        self._writer: BatchWriter | None = None
        self._ids: dict[str, int] = {}
        self._set_up = False
        self._down = False  # an outage was reported and has not ended
        self._next_try = 0.0
        self._backoff = BACKOFF_MIN_S
        self.rows_written = 0
        self.duplicates = 0
        self.rejected = 0  # rows the writer refused
        self.quarantined = 0  # input refused on the way (Rejected), stored with its batch
        self.unknown_tag_rows = 0
        self.last_write: dt.datetime | None = None
        self.last_error: str | None = None
        self.outages = 0

    @property
    def up(self) -> bool:
        return self._writer is not None

    def retry_due(self) -> bool:
        return self.up or time.monotonic() >= self._next_try

    async def connect(self) -> bool:
        """Connect if down and the backoff allows; True when connected."""
        if self.up:
            return True
        if not self.retry_due():
            return False
        try:
            if not self._set_up:
                await asyncio.to_thread(self._setup)
                self._set_up = True
            async with asyncio.timeout(self.write_timeout_s):
                self._writer = await BatchWriter.connect(self.url)
                self._ids = await self._load_ids()
        except TimeoutError:
            self._failed(TimeoutError(f"no answer within {self.write_timeout_s:g} s"))
            return False
        except (psycopg.Error, WriteError, MigrationError, OwnershipConflict, OSError) as exc:
            self._failed(exc)
            return False
        self._backoff = BACKOFF_MIN_S
        if self._down:
            self._down = False
            log.info("database reachable again")
        return True

    def _setup(self) -> None:
        """Schema and plant model, once per process, before the first write."""
        with psycopg.connect(self.url, **LINK_OPTIONS) as conn:
            applied = migrate(conn)
            report = sync_plant(conn, self.cfg)
        if applied:
            log.info("schema migrated: %s", ", ".join(m.name for m in applied))
        log.info("plant model synced: %d tags", report.tags)
        if report.other_host is not None:
            other, when = report.other_host
            # Members of one MQTT shared subscription group run one config on several hosts
            one_group = not report.plant_changed and self.cfg.shares_subscriptions()
            log.log(
                logging.INFO if one_group else logging.WARNING,
                "edge %r last synced from host %s at %s%s",
                self.cfg.settings.edge,
                other,
                when.isoformat(timespec="seconds"),
                ", the same plant: collectors of one MQTT shared subscription group"
                if one_group
                else ": if a collector there still runs, two collectors share one edge name and "
                "switch each other's lines off; give each its own settings.edge (docs/scale.md)",
            )

    async def _load_ids(self) -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(self.url, **LINK_OPTIONS) as conn:
            # This edge's machines only: a spooled row of a machine another edge took over is
            # no longer ours to write (it is kept in rejected_readings).
            cur = await conn.execute(
                "SELECT t.machine_id || '.' || t.name, t.id FROM tags t "
                "JOIN machines m ON m.id = t.machine_id WHERE m.edge = %s",
                (self.cfg.settings.edge,),
            )
            return dict(await cur.fetchall())

    def _failed(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}".strip()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            asyncio.get_running_loop().create_task(_close_quietly(writer))
        if not self._down:
            self._down = True
            self.outages += 1
            # Not an outage: nothing is written until the schema or the config is fixed
            level = (
                logging.ERROR
                if isinstance(exc, MigrationError | OwnershipConflict)
                else logging.WARNING
            )
            log.log(level, "database unavailable, spooling readings: %s", self.last_error)
        else:
            log.debug("database still unavailable: %s", self.last_error)
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    async def write(self, rows: Sequence[Row], rejected: Sequence[Rejected] = ()) -> WriteResult:
        """Write one batch, and what was refused with it, in one transaction, or raise
        DatabaseDown (nothing was written)."""
        if not await self.connect():
            raise DatabaseDown(self.last_error)
        assert self._writer is not None
        db_rows, unknown = self._with_ids(rows)
        quarantined = [self._quarantined(r) for r in rejected]
        if unknown:
            quarantined += self._unconfigured(unknown)
        try:
            # A link that stopped answering without closing: the batch goes to the spool (it
            # may have been stored: the replay skips what was)
            async with asyncio.timeout(self.write_timeout_s):
                result = await self._writer.write(db_rows, quarantined)
        except TimeoutError as exc:
            self._failed(TimeoutError(f"a batch had no answer within {self.write_timeout_s:g} s"))
            raise DatabaseDown(self.last_error) from exc
        except (WriteError, psycopg.Error, OSError) as exc:
            self._failed(exc)
            raise DatabaseDown(self.last_error) from exc
        self.rows_written += result.inserted
        self.duplicates += result.duplicates
        self.rejected += len(result.rejected)
        self.quarantined += len(rejected)
        self.unknown_tag_rows += len(unknown)
        self.last_write = dt.datetime.now(dt.UTC)
        return result

    def _quarantined(self, r: Rejected) -> Quarantined:
        tag_id = self._ids.get(r.key) if r.key is not None else None
        return Quarantined(r.time, tag_id, r.source, r.address, r.what, r.reason)

    def _with_ids(self, rows: Sequence[Row]) -> tuple[list[DbRow], list[Row]]:
        """Rows with tag ids instead of keys, and the rows of keys the database does not know
        (spooled before a config change). One dict lookup per row; the common batch, where every
        key is known, never leaves the comprehension."""
        ids = self._ids
        try:
            return [(t, ids[key], value, q, text) for t, key, value, q, text in rows], []
        except KeyError:
            pass
        db_rows: list[DbRow] = []
        unknown: list[Row] = []
        for row in rows:
            tag_id = ids.get(row[1])
            if tag_id is None:
                unknown.append(row)
            else:
                db_rows.append((row[0], tag_id, row[2], row[3], row[4]))
        return db_rows, unknown

    def _unconfigured(self, rows: list[Row]) -> list[Quarantined]:
        """Spooled rows of tags no longer configured: kept in rejected_readings, reported."""
        log.error(
            "%d spooled readings belong to tags no longer configured (first: %s): "
            "kept in rejected_readings",
            len(rows),
            rows[0][1],
        )
        return [
            Quarantined(r[0], None, None, None, render(r), f"tag {r[1]!r} is not configured")
            for r in rows
        ]

    async def close(self) -> None:
        if self._writer is not None:
            await _close_quietly(self._writer)
            self._writer = None


async def _close_quietly(writer: BatchWriter) -> None:
    with contextlib.suppress(psycopg.Error, OSError):
        await writer.close()
