"""Retention: drop whole old chunks of raw readings and of rollups (TimescaleDB drop_chunks:
data up to one chunk interval past the cutoff stays, nothing newer is dropped), and rejected
readings received before the raw cutoff (docs/rollups.md, "Retention").
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import psycopg

from config.settings import RetentionSettings

log = logging.getLogger(__name__)

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
