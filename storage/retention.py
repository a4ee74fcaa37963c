"""Retention: drop whole old chunks of raw readings and of rollups (TimescaleDB drop_chunks:
data up to one chunk interval past the cutoff stays, nothing newer is dropped), and rejected
readings received before the raw cutoff (docs/rollups.md, "Retention").

Several collectors on one database run it once per interval between them, never two at once
(`elected`): whoever finds the lock free and the last run old enough does it; `shopfloor
maintain` runs it now, waiting for the lock (docs/scale.md).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import psycopg

from config.settings import RetentionSettings

log = logging.getLogger(__name__)

RETENTION_LOCK = 7_464_024  # pg_advisory_lock key: one retention run at a time per database
RAW_TABLES = ("readings",)
ROLLUP_TABLES = ("machine_minutes", "machine_hours", "downtime_minutes", "downtime_hours")


@dataclass
class RetentionReport:
    dropped_chunks: dict[str, list[str]] = field(default_factory=dict)  # table -> chunk names
    rejected_deleted: int = 0


async def _drop(
    conn: psycopg.AsyncConnection, table: str, cutoff: dt.datetime, report: RetentionReport
) -> None:
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz)", (table, cutoff)
        )
        dropped = [str(r[0]) for r in await cur.fetchall()]
    report.dropped_chunks[table] = dropped
    if dropped:
        log.info(
            "retention: dropped %d chunk(s) of %s older than %s: %s",
            len(dropped),
            table,
            cutoff.isoformat(),
            ", ".join(dropped),
        )


async def enforce(
    conn: psycopg.AsyncConnection, settings: RetentionSettings, *, now: dt.datetime
) -> RetentionReport:
    """Drop what is older than raw_days (readings, rejected readings) and rollup_days (minute
    and hour rollups, stop time by reason too); None keeps forever. Each step commits on its
    own."""
    if now.utcoffset() is None:
        raise ValueError("retention.enforce: now must be timezone-aware")
    report = RetentionReport()
    if settings.raw_days is not None:
        cutoff = now - dt.timedelta(days=settings.raw_days)
        async with conn.transaction():
            for table in RAW_TABLES:
                await _drop(conn, table, cutoff, report)
            async with conn.cursor() as cur:
                await cur.execute("DELETE FROM rejected_readings WHERE received_at < %s", (cutoff,))
                report.rejected_deleted = cur.rowcount
        if report.rejected_deleted:
            log.info(
                "retention: deleted %d rejected reading(s) received before %s",
                report.rejected_deleted,
                cutoff.isoformat(),
            )
    if settings.rollup_days is not None:
        cutoff = now - dt.timedelta(days=settings.rollup_days)
        async with conn.transaction():
            for table in ROLLUP_TABLES:
                await _drop(conn, table, cutoff, report)
    return report


@dataclass(frozen=True)
class Run:
    report: RetentionReport | None  # None: skipped, `why` says why
    why: str = ""


async def elected(
    conn: psycopg.AsyncConnection,
    settings: RetentionSettings,
    *,
    edge: str,
    now: dt.datetime,
    wait: bool = False,
) -> Run:
    """`enforce` under the database's retention lock, if no run (by any edge) started within
    `settings.interval_s`; `wait`: wait for the lock and run regardless of the last run. Needs an
    autocommit connection: the lock is the session's."""
    if not conn.autocommit:
        raise ValueError("retention.elected needs an autocommit connection")
    if wait:
        await conn.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK,))
    else:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK,))
        if not (await cur.fetchone() or (False,))[0]:
            return Run(None, "another retention run holds the lock")
    try:
        cur = await conn.execute(
            "SELECT edge, started_at FROM maintenance_runs WHERE job = 'retention'"
        )
        last = await cur.fetchone()
        if not wait and last and now - last[1] < dt.timedelta(seconds=settings.interval_s):
            return Run(None, f"edge {last[0]!r} ran it at {last[1].isoformat()}")
        await conn.execute(
            "INSERT INTO maintenance_runs (job, edge, started_at) VALUES ('retention', %s, %s) "
            "ON CONFLICT (job) DO UPDATE SET edge = EXCLUDED.edge, "
            "started_at = EXCLUDED.started_at, finished_at = NULL",
            (edge, now),
        )
        report = await enforce(conn, settings, now=now)
        await conn.execute(
            "UPDATE maintenance_runs SET finished_at = now() WHERE job = 'retention'"
        )
        return Run(report)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
