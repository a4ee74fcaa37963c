"""Issue 17 at the command line: a config declaring another edge's line is refused by `check`
and by `collect` before anything starts, naming the owner, the key path and the line in the
file; `db release` lets a line move; `maintain` runs retention once for the database."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest

from collector.dbsink import DatabaseSink
from config import ShopfloorConfig
from config.sources.mqtt import MqttSource
from config.tags import TagBase
from storage.migrate import migrate
from storage.plant_sync import sync_plant
from tests.api.plant import PLANT, plant
from tests.edges import edge_config, line_of
from tests.services import run_shopfloor


def intruder(tmp_path: Path) -> Path:
    """The whole test plant, as edge 'intruder'."""
    path = tmp_path / "intruder.yaml"
    path.write_text(PLANT + "settings:\n  edge: intruder\n  kpi: {short_stop_s: 0}\n")
    return path


def test_another_edges_line_is_refused_then_released(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        sync_plant(conn, edge_config(plant(), "line2-pc", {"ld", "le"}))
    config = intruder(tmp_path)
    ld = line_of(config, "- id: ld")
    expected = f"  lines[2].id (line {ld}): line 'ld' belongs to edge 'line2-pc' (host "
    for verb in (["check", str(config)], ["collect", "--config", str(config)]):
        done = run_shopfloor(*verb, "--database-url", database_url)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith(f"{config}: 7 problem(s)\n"), done.stderr
        assert expected in done.stderr
        assert "machine 'packer' (and its tags) belongs to edge 'line2-pc'" in done.stderr
    done = run_shopfloor("db", "migrate", "--config", str(config), "--database-url", database_url)
    assert done.returncode == 1
    assert "plant model not synced: 7 declaration(s) belong to another edge:\n" in done.stderr
    with psycopg.connect(database_url) as conn:
        owners = conn.execute("SELECT id, edge FROM lines WHERE active ORDER BY id").fetchall()
    assert owners == [("ld", "line2-pc"), ("le", "line2-pc")]  # nothing changed

    unknown = run_shopfloor("db", "release", "line9-pc", "--database-url", database_url)
    assert unknown.returncode == 1
    assert "no edge 'line9-pc' has synced here; edges: line2-pc" in unknown.stderr
    done = run_shopfloor("db", "release", "line2-pc", "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("edge 'line2-pc' released: 2 line(s) (ld, le), 5 machine(s)")
    done = run_shopfloor("check", str(config), "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    assert "checked against the database: edge 'intruder' owns it all" in done.stderr


def test_check_without_a_reachable_database_says_it_did_not_check(tmp_path: Path) -> None:
    config = intruder(tmp_path)
    done = run_shopfloor("check", str(config), "--database-url", "postgresql://x@127.0.0.1:1/x")
    assert done.returncode == 0, done.stderr
    assert "note: ownership not checked against the database: OperationalError" in done.stderr


def test_a_config_without_lines_serves_but_does_not_collect(tmp_path: Path) -> None:
    config = tmp_path / "central.yaml"
    config.write_text("plant: central\nsettings:\n  api: {port: 8099}\n")
    done = run_shopfloor("check", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{config}: OK (0 line(s), 0 machine(s)")
    done = run_shopfloor("collect", "--config", str(config), "--database-url", "postgresql:///x")
    assert done.returncode == 1
    assert "declares no lines, so there is nothing to collect" in done.stderr


def test_maintain_runs_retention_once(database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "central.yaml"
    config.write_text("settings:\n  edge: central\n  retention: {raw_days: 30, rollup_days: 60}\n")
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        sync_plant(conn, plant())
        tag = conn.execute("SELECT id FROM tags ORDER BY id LIMIT 1").fetchone()
        assert tag is not None
        conn.execute(
            "INSERT INTO readings (time, tag_id, value) VALUES "
            "(now() - interval '40 days', %s, 1), (now(), %s, 2)",
            (tag[0], tag[0]),
        )
    done = run_shopfloor("db", "migrate", "--config", str(config), "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    assert "plant model: none declared" in done.stdout
    done = run_shopfloor("maintain", "--config", str(config), "--database-url", database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("retention: 1 chunk(s) of readings dropped"), done.stdout
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT value FROM readings").fetchall() == [(2.0,)]
        # the central config synced nothing: no edge of its own
        assert conn.execute("SELECT name FROM edges").fetchall() == [("default",)]
        run = conn.execute("SELECT edge, finished_at IS NOT NULL FROM maintenance_runs").fetchone()
    assert run == ("central", True)


async def start_after(
    url: str,
    cfg: ShopfloorConfig,
    last: ShopfloorConfig,
    host: str,
    caplog: pytest.LogCaptureFixture,
) -> list[tuple[int, str]]:
    """What the collector's sink logs (INFO and above) starting with `cfg` after `last` was
    synced from `host`."""
    with psycopg.connect(url) as conn:
        migrate(conn)
        sync_plant(conn, last, host=host)
    sink = DatabaseSink(cfg, url)
    with caplog.at_level(logging.INFO, logger="collector.dbsink"):
        assert await sink.connect()
    await sink.close()
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "collector.dbsink"]


async def test_a_second_host_under_one_edge_name_is_warned(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two collectors that share an edge name switch each other's lines off at each start: the
    second start says so (a replaced PC gets the same line once)."""
    cfg = edge_config(plant(), "line2-pc", {"ld", "le"})
    said = await start_after(database_url, cfg, cfg, "old-pc", caplog)
    warnings = [message for level, message in said if level == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("edge 'line2-pc' last synced from host old-pc at ")
    assert "two collectors share one edge name" in warnings[0]


def shared_group_config(cfg: ShopfloorConfig) -> ShopfloorConfig:
    """`cfg` with its tags read from one MQTT shared subscription group instead: the config
    each central collector behind a broker runs (docs/scale.md)."""
    tags = [
        {**t.model_dump(include=set(TagBase.model_fields)), "topic": f"plant/{t.machine}/{t.name}"}
        for _, t in cfg.tags()
    ]
    source = MqttSource.model_validate(
        {
            "protocol": "mqtt",
            "name": "plant",
            "host": "broker",
            "shared_group": "central",
            "tags": tags,
        }
    )
    return cfg.model_copy(update={"sources": [source]})


@pytest.mark.parametrize("same_plant", [True, False])
async def test_members_of_one_shared_group_sync_one_edge_without_a_warning(
    database_url: str, caplog: pytest.LogCaptureFixture, same_plant: bool
) -> None:
    """Central collectors of one shared subscription group run one config under one edge name:
    each start names the other host at INFO. A member whose config differs would switch the
    others' lines off: warned as for any second host."""
    cfg = shared_group_config(edge_config(plant(), "central", {"ld", "le"}))
    assert cfg.shares_subscriptions()
    other = cfg if same_plant else edge_config(cfg, "central", {"ld"})
    said = await start_after(database_url, cfg, other, "central-2", caplog)
    [(level, message)] = [(lvl, m) for lvl, m in said if "last synced from" in m]
    assert message.startswith("edge 'central' last synced from host central-2 at ")
    if same_plant:
        assert level == logging.INFO and message.endswith(
            "the same plant: collectors of one MQTT shared subscription group"
        )
    else:
        assert level == logging.WARNING and "two collectors share one edge name" in message
