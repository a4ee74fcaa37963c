"""Migrations against the real TimescaleDB: idempotent, and a clear error without the extension."""

from __future__ import annotations

import datetime as dt
import shutil

import psycopg
import pytest

from config import DEMO_CONFIG, load_config
from localenv.cluster import LocalCluster
from storage.migrate import MigrationError, available_migrations, migrate, schema_version
from storage.plant_sync import sync_plant, tag_ids
from tests.services import free_port, run_shopfloor, world_traversable_tempdir

SCHEMA_SNAPSHOT = """
SELECT 'column', table_name || '.' || column_name || ':' || data_type || ':' || is_nullable
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', tablename || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'hypertable', hypertable_name || ':' || num_dimensions FROM timescaledb_information.hypertables
UNION ALL
SELECT 'dimension', hypertable_name || ':' || column_name || ':' || time_interval::text
  FROM timescaledb_information.dimensions
UNION ALL
SELECT 'migration', version::text || ':' || name FROM shopfloor_schema
ORDER BY 1, 2
"""


def snapshot(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(SCHEMA_SNAPSHOT).fetchall()


def test_migrate_twice_gives_the_same_schema(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        first = migrate(conn)
        assert [m.version for m in first] == [m.version for m in available_migrations()]
        before = snapshot(conn)
        assert migrate(conn) == []
        assert snapshot(conn) == before
        assert schema_version(conn) == len(available_migrations())
    assert ("dimension", "readings:time:1 day") in before
    assert ("hypertable", "readings:1") in before
    # readings carries one index, the unique (tag_id, time) every query uses: TimescaleDB's
    # default (time DESC) index only cost ingest (migration 003).
    readings = [d for kind, d in before if kind == "index" and d.startswith("readings:")]
    assert len(readings) == 1 and "UNIQUE" in readings[0] and '(tag_id, "time")' in readings[0]


def test_plant_sync_is_idempotent_and_keeps_tag_ids(database_url: str) -> None:
    cfg = load_config(DEMO_CONFIG)
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        report = sync_plant(conn, cfg)
        ids = tag_ids(conn)
        assert (report.lines, report.machines, report.tags) == (1, 4, 23)
        sync_plant(conn, cfg)
        assert tag_ids(conn) == ids
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM lines), (SELECT count(*) FROM machines), "
            "(SELECT count(*) FROM tags), (SELECT count(*) FROM stop_reasons), "
            "(SELECT count(*) FROM machine_ideal_cycles)"
        ).fetchone()
        assert counts == (1, 4, 23, len(cfg.stop_reasons), 4)

        # A changed ideal cycle time is appended, not overwritten; a removed tag is deactivated.
        line = cfg.lines[0]
        filler = line.machines[0].model_copy(update={"ideal_cycle_s": 0.4})
        opcua = cfg.sources[0].model_copy(update={"tags": cfg.sources[0].tags[:-1]})
        changed = cfg.model_copy(
            update={
                "lines": [line.model_copy(update={"machines": [filler, *line.machines[1:]]})],
                "sources": [opcua, *cfg.sources[1:]],
            }
        )
        assert sync_plant(conn, changed).cycle_changes == 1
        cycles = conn.execute(
            "SELECT ideal_cycle_s FROM machine_ideal_cycles "
            "WHERE machine_id = 'filler' ORDER BY valid_from"
        ).fetchall()
        assert cycles == [(0.5,), (0.4,)]
        inactive = conn.execute("SELECT machine_id, name FROM tags WHERE NOT active").fetchall()
        assert inactive == [("filler", "speed")]


def test_migrate_cli_against_a_database_url(database_url: str) -> None:
    proc = run_shopfloor(
        "db", "migrate", "--config", str(DEMO_CONFIG), env={"SHOPFLOOR_DATABASE_URL": database_url}
    )
    assert proc.returncode == 0, proc.stderr
    assert "migrations applied: 001_initial" in proc.stdout
    again = run_shopfloor(
        "db", "migrate", "--config", str(DEMO_CONFIG), "--database-url", database_url
    )
    assert again.returncode == 0, again.stderr
    assert "migrations applied: none (up to date)" in again.stdout


@pytest.fixture(scope="module")
def cluster_without_preload():
    """A second real cluster whose server does not preload TimescaleDB."""
    base = world_traversable_tempdir("shopfloor-test-nopreload-")
    cluster = LocalCluster(base=base / "db", port=free_port())
    cluster.init()
    with (cluster.data_dir / "postgresql.conf").open("a") as f:
        f.write("shared_preload_libraries = ''\n")  # later settings win
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


def test_migrate_explains_a_missing_preload(cluster_without_preload: LocalCluster) -> None:
    with psycopg.connect(cluster_without_preload.url) as conn:
        with pytest.raises(MigrationError, match="shared_preload_libraries"):
            migrate(conn)
        assert conn.execute("SELECT to_regclass('readings')").fetchone() == (None,)


def test_db_cli_up_status_down() -> None:
    base = world_traversable_tempdir("shopfloor-test-cli-")
    try:
        d, port = str(base / "db"), str(free_port())
        up = run_shopfloor("db", "up", "--dir", d, "--port", port)
        assert up.returncode == 0, up.stderr
        url = up.stdout.strip()
        assert url.startswith("postgresql://shopfloor:") and url.endswith(f":{port}/shopfloor")
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("timescaledb",)
        status = run_shopfloor("db", "status", "--dir", d)  # remembers its port
        assert status.returncode == 0 and status.stdout.startswith("running: "), status
        assert run_shopfloor("db", "up", "--dir", d).stdout.strip() == url  # idempotent
        assert run_shopfloor("db", "down", "--dir", d).returncode == 0
        assert run_shopfloor("db", "status", "--dir", d).returncode == 3
    finally:
        run_shopfloor("db", "down", "--dir", str(base / "db"))
        shutil.rmtree(base, ignore_errors=True)


def _schema_at(conn: psycopg.Connection, version: int) -> None:
    """The schema as migration `version` left it, with one line, machine and state tag (the
    plant sync of today needs today's schema)."""
    conn.execute(
        "CREATE TABLE shopfloor_schema (version int PRIMARY KEY, name text NOT NULL, "
        "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for m in available_migrations()[:version]:
        conn.execute(m.sql.encode())
        conn.execute(
            "INSERT INTO shopfloor_schema (version, name, checksum) VALUES (%s, %s, %s)",
            (m.version, m.name, m.checksum),
        )
    conn.execute(
        "INSERT INTO lines (id, constraint_machine, output_machines) "
        "VALUES ('line1', 'packer', '{packer}')"
    )
    for position, machine in enumerate(("filler", "capper", "packer")):
        conn.execute(
            "INSERT INTO machines (id, line_id, position, state_map) VALUES (%s, 'line1', %s, %s)",
            (machine, position, '{"1": "running"}'),
        )
    conn.execute(
        "INSERT INTO tags (machine_id, name, signal, source, protocol, address) "
        "VALUES ('filler', 'state', 'state', 'filler-plc', 'opcua', 'ns=2;s=filler.state')"
    )


def test_migration_4_moves_readings_outside_the_span_to_rejected_readings(
    database_url: str,
) -> None:
    """A database written before the writer refused such times: a year-1 reading (it broke
    rollups and every KPI request of its line) is moved to rejected_readings, not lost; the
    rollup marks it set are cleared so the next refresh starts afresh."""
    with psycopg.connect(database_url) as conn:
        _schema_at(conn, 3)
        (tag,) = conn.execute("SELECT id FROM tags").fetchone() or ()
        conn.execute(
            "INSERT INTO readings (time, tag_id, value, quality) VALUES "
            "('0001-01-01T00:00:00Z', %s, 1, 0), ('2026-03-02T06:00:00Z', %s, 1, 0)",
            (tag, tag),
        )
        conn.execute(
            "INSERT INTO rollup_state (machine_id, computed_until, dirty_since) VALUES "
            "('filler', '0001-01-01T00:00:00Z', NULL), "
            "('capper', '2026-03-02T06:00:00Z', '2026-03-02T05:00:00Z')"
        )
        conn.commit()
        assert [m.version for m in migrate(conn)] == [m.version for m in available_migrations()[3:]]
        readings = conn.execute("SELECT time::text FROM readings ORDER BY time").fetchall()
        moved = conn.execute("SELECT tag_id, reason FROM rejected_readings").fetchall()
        marks = conn.execute(
            "SELECT machine_id, computed_until::text, dirty_since::text FROM rollup_state "
            "ORDER BY machine_id"
        ).fetchall()
    assert readings == [("2026-03-02 06:00:00+00",)]
    assert moved == [(tag, "time outside 1900-01-01 .. 2200-01-01 (moved by migration 004)")]
    assert marks == [
        ("capper", "2026-03-02 06:00:00+00", "2026-03-02 05:00:00+00"),
        ("filler", None, None),
    ]


def test_migration_5_gives_old_rollups_one_unit_per_count_and_sync_rescales_them(
    database_url: str,
) -> None:
    """Rollup rows made before line units counted one unit per count; the first sync that
    declares the packer's 12 units per count rescales its rows (they hold from the beginning),
    a later change holds from the sync on and leaves stored rows alone."""
    cfg = load_config(DEMO_CONFIG)
    with psycopg.connect(database_url) as conn:
        _schema_at(conn, 4)
        for table, column in (("machine_minutes", "minute"), ("machine_hours", "hour")):
            conn.execute(
                f"INSERT INTO {table} (machine_id, {column}, good, reject, total) VALUES "
                "('filler', '2026-03-02T06:00:00Z', 120, 2, NULL), "
                "('packer', '2026-03-02T06:00:00Z', 10, 1, NULL)"
            )
        conn.commit()
        migrate(conn)
        units = "SELECT machine_id, good_units, reject_units, total_units FROM {} ORDER BY 1"
        assert conn.execute(units.format("machine_minutes")).fetchall() == [
            ("filler", 120, 2, None),
            ("packer", 10, 1, None),
        ]
        sync_plant(conn, cfg)
        for table in ("machine_minutes", "machine_hours"):
            assert conn.execute(units.format(table)).fetchall() == [
                ("filler", 120, 2, None),
                ("packer", 120, 12, None),
            ]
        history = "SELECT valid_from::text, units_per_count FROM machine_units WHERE machine_id = 'packer'"
        assert conn.execute(history).fetchall() == [("1970-01-01 00:00:00+00", 12)]
        machines = [
            m.model_copy(update={"units_per_count": 24}) if m.id == "packer" else m
            for m in cfg.lines[0].machines
        ]
        changed = cfg.model_copy(
            update={"lines": [cfg.lines[0].model_copy(update={"machines": machines})]}
        )
        sync_plant(conn, changed, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
        assert conn.execute(history).fetchall() == [
            ("1970-01-01 00:00:00+00", 12),
            ("2026-06-01 00:00:00+00", 24),
        ]
        assert conn.execute(units.format("machine_minutes")).fetchall()[1] == (
            "packer",
            120,
            12,
            None,
        )


def test_migration_7_recomputes_machines_with_minute_rows(database_url: str) -> None:
    """Minutes computed before migration 7 have no stop rows: machines with minute rows are
    recomputed (computed_until cleared); one without any has nothing to fill in."""
    minute = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
    with psycopg.connect(database_url) as conn:
        _schema_at(conn, 6)
        conn.execute(
            "INSERT INTO rollup_state (machine_id, computed_until) VALUES "
            "('m1', '2026-03-02T07:00:00Z'), ('m2', '2026-03-02T07:00:00Z')"
        )
        conn.execute(
            "INSERT INTO machine_minutes (machine_id, minute) VALUES ('m1', %s)", (minute,)
        )
        conn.commit()
        assert 7 in [m.version for m in migrate(conn)]
        marks = conn.execute("SELECT machine_id, computed_until FROM rollup_state ORDER BY 1")
        assert marks.fetchall() == [("m1", None), ("m2", minute + dt.timedelta(hours=1))]
