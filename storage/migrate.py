"""Versioned, idempotent schema migrations from `storage/migrations/NNN_name.sql`.

Each file runs once, in its own transaction, recorded in `shopfloor_schema` with a checksum; a
second run changes nothing. An advisory lock keeps two collectors from migrating at once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

MIGRATION_LOCK = 7_464_021  # pg_advisory_lock key: "shopfloor migrate"
MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The schema cannot be created or upgraded; the message says why and what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    folder = resources.files("storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must run 1..N without gaps, found {versions}")
    return found


def check_timescaledb(conn: psycopg.Connection) -> None:
    """Fail with a clear message when the server cannot give us TimescaleDB."""
    row = conn.execute(
        "SELECT default_version, installed_version FROM pg_available_extensions "
        "WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        raise MigrationError(
            "the TimescaleDB extension is not installed on this PostgreSQL server. Install "
            "TimescaleDB 2.x there (scripts/setup builds it for a local PostgreSQL 15), or point "
            "settings.database.url / SHOPFLOOR_DATABASE_URL at a server that has it."
        )
    preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    if preload is None or "timescaledb" not in preload[0]:
        raise MigrationError(
            "TimescaleDB is installed but not preloaded: add shared_preload_libraries = "
            "'timescaledb' to postgresql.conf and restart the server."
        )


def migrate(conn: psycopg.Connection) -> list[Migration]:
    """Apply pending migrations; return those applied (empty when up to date)."""
    check_timescaledb(conn)
    applied: list[Migration] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS shopfloor_schema (version int PRIMARY KEY, "
            "name text NOT NULL, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done: dict[int, str] = dict(
            conn.execute("SELECT version, checksum FROM shopfloor_schema").fetchall()
        )
        known = available_migrations()
        if done and max(done) > len(known):
            raise MigrationError(
                f"the database is at schema version {max(done)}, newer than this shopfloor "
                f"({len(known)}); upgrade shopfloor"
            )
        for m in known:
            if m.version in done:
                if done[m.version] != m.checksum:
                    log.warning("migration %03d_%s changed after it was applied", m.version, m.name)
                continue
            log.debug("applying migration %03d_%s", m.version, m.name)
            try:
                conn.execute(m.sql.encode())
            except psycopg.Error as exc:
                raise MigrationError(f"migration {m.version:03d}_{m.name} failed: {exc}") from exc
            conn.execute(
                "INSERT INTO shopfloor_schema (version, name, checksum) VALUES (%s, %s, %s)",
                (m.version, m.name, m.checksum),
            )
            applied.append(m)
    return applied


def schema_version(conn: psycopg.Connection) -> int:
    """The newest applied migration; 0 for a database shopfloor never migrated."""
    if conn.execute("SELECT to_regclass('shopfloor_schema')").fetchone() == (None,):
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM shopfloor_schema").fetchone()
    return int(row[0]) if row else 0
