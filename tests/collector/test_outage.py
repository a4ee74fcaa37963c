"""The collector's promise, shown end to end: the demo line runs, the database goes away for more
than 20 s, the collector is SIGKILLed and restarted during the outage, the database returns and
the spool drains; then every MQTT event is stored exactly once and every stored reading agrees
with the simulators' truth file."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from config import ShopfloorConfig, load_config
from config.sources import ModbusSource, MqttSource
from localenv.cluster import LocalCluster
from localenv.mosquitto import Mosquitto
from simulators import truth as truth_file
from simulators.runner import SimulatorThread, with_simulation
from tests.services import eventually, free_port

DEMO = Path(__file__).parents[2] / "config" / "demo.yaml"
SPEED = 20.0
LATENCY = dt.timedelta(seconds=1.5)  # OPC UA publishing 0.5 s, Modbus poll 0.5 s, with margin


def answered_within(cfg: ShopfloorConfig) -> dict[str, dt.timedelta]:
    """How long after its stamp a reading's value may have been taken, per machine: a Modbus
    reading carries its request's send time and the device answers within the timeout; OPC UA
    stamps at the source."""
    ahead = dict.fromkeys(cfg.machines(), dt.timedelta(0))
    for source in cfg.sources:
        if isinstance(source, ModbusSource):
            for tag in source.tags:
                ahead[tag.machine] = dt.timedelta(seconds=source.timeout_s)
    return ahead


def _config_with_ports(text: str, ports: dict[str, int], mqtt_port: int) -> str:
    text = text.replace("127.0.0.1:48400", f"127.0.0.1:{ports['filler-plc']}")
    text = re.sub(r"port: 15020", f"port: {ports['capper-labeler-plc']}", text)
    return re.sub(r"port: 18830", f"port: {mqtt_port}", text)


def _spooled_rows(spool_dir: Path) -> int:
    path = spool_dir / "spool.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return db.execute("SELECT coalesce(sum(nrows), 0) FROM batches").fetchone()[0]


def _start_collector(
    config: Path, url: str, spool: Path, log: Path, verb: str = "collect", **env: str
) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "shopfloor"
    env = {
        **os.environ,
        "SHOPFLOOR_DATABASE_URL": url,
        "SHOPFLOOR_ROLLUPS_INTERVAL_S": "2",
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(exe), "-v", verb, "--config", str(config), "--spool-dir", str(spool)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _fresh_database(cluster: LocalCluster) -> str:
    cluster.start()
    url = cluster.url
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        name = url.rsplit("/", 1)[1]
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return url


def _demo_plant(tmp_path: Path) -> tuple[ShopfloorConfig, Mosquitto, dict[str, int], Path]:
    """The demo line (no break at test time) on free ports, its broker started, its config
    written for the collector."""
    cfg = with_simulation(load_config(DEMO), follow_calendar=False)
    broker = Mosquitto(tmp_path / "mosquitto").start()
    ports = {s.name: broker.port if isinstance(s, MqttSource) else free_port() for s in cfg.sources}
    config = tmp_path / "plant.yaml"
    config.write_text(_config_with_ports(DEMO.read_text(), ports, broker.port))
    return cfg, broker, ports, config


def _stored(url: str) -> list[tuple[str, str, dt.datetime, float]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT t.machine_id, t.name, r.time, r.value FROM readings r "
            "JOIN tags t ON t.id = r.tag_id ORDER BY r.time"
        ).fetchall()


def _duplicates_and_rejected(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY tag_id, time "
            "HAVING count(*) > 1) d"
        ).fetchone()[0]  # type: ignore[index]
        rejected = conn.execute("SELECT count(*) FROM rejected_readings").fetchone()[0]  # type: ignore[index]
    return dupes, rejected


def _assert_packer_cases_exactly_once(
    truth: truth_file.Truth, stored: list[tuple[str, str, dt.datetime, float]]
) -> None:
    """MQTT (acknowledged after storage): every case the packer reported, exactly once."""
    packer = truth_file.window(truth, "packer", truth.records[0]["_ts"], truth.end)
    events = [r for r in truth.records if r["type"] == "count" and r["machine"] == "packer"]
    good = [v for m, n, _, v in stored if (m, n) == ("packer", "good_count")]
    reject = [v for m, n, _, v in stored if (m, n) == ("packer", "reject_count")]
    assert len(good) == len(reject) == len(events) > 0
    assert (sum(good), sum(reject)) == (packer.good, packer.reject)


def in_force(
    truth: truth_file.Truth, machine: str, key: str, start: dt.datetime, end: dt.datetime
) -> set[int]:
    """Values `key` had at some instant of [start, end]: a reading stamped in that span holds one
    of them (the simulator's registers trail its model by up to one tick; see answered_within)."""
    values = {truth_file.value_at(truth, machine, key, start)}
    for ts, snap in truth_file.snapshots(truth, machine):
        if start < ts <= end:
            values.add(snap.get(key))
    return values - {None}


def _count(url: str, sql: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute(sql).fetchone()[0]  # type: ignore[index]
    except psycopg.Error:  # down, or not migrated yet (the collector creates the tables)
        return -1


async def test_database_outage_and_collector_kill_lose_nothing(
    own_cluster: LocalCluster, tmp_path: Path
) -> None:
    url = _fresh_database(own_cluster)
    cfg, broker, ports, config = _demo_plant(tmp_path)
    spool, log, truth_path = tmp_path / "spool", tmp_path / "collector.log", tmp_path / "truth"
    collector = _start_collector(config, url, spool, log)
    rows_sql = "SELECT count(*) FROM readings"
    try:
        # In a thread of its own: this test's blocking calls must not stall the PLCs' clock.
        with SimulatorThread(cfg, speed=SPEED, ports=ports, truth_path=truth_path) as sims:
            # Until every front end listens, servers serve second 0 while the model runs on
            # (docs/simulators.md): polled values are comparable from then on.
            serving = sims.clock.epoch + dt.timedelta(seconds=sims.start_seconds) + LATENCY
            await eventually(
                lambda: _count(url, rows_sql) > 200, within=60, what=lambda: log.read_text()
            )
            outage_start = time.monotonic()
            await asyncio.to_thread(own_cluster.stop, mode="fast")
            await eventually(lambda: _spooled_rows(spool) > 0, within=30, what="spooling")
            await asyncio.sleep(4)
            collector.send_signal(signal.SIGKILL)
            collector.wait(10)
            spooled_at_kill = _spooled_rows(spool)
            await asyncio.sleep(2)  # the line runs on; MQTT messages queue in the broker
            collector = _start_collector(config, url, spool, log)
            await eventually(
                lambda: _spooled_rows(spool) > spooled_at_kill,
                within=30,
                what="restarted collector spools",
            )
            await asyncio.sleep(max(0.0, 22 - (time.monotonic() - outage_start)))
            outage_s = time.monotonic() - outage_start
            await asyncio.to_thread(own_cluster.start)
            await eventually(
                lambda: _spooled_rows(spool) == 0, within=90, what=lambda: log.read_text()
            )
            await asyncio.sleep(3)  # some live traffic after the replay
        await asyncio.sleep(2)  # the last readings reach the collector
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(30) == 0, log.read_text()
    finally:
        if collector.poll() is None:
            collector.kill()
        broker.stop()
    assert outage_s >= 20
    truth = truth_file.load(truth_path)
    stored = _stored(url)
    assert _duplicates_and_rejected(url) == (0, 0)
    _assert_packer_cases_exactly_once(truth, stored)

    # Polled and subscribed PLCs: each stored counter and state equals the truth at its time, and
    # the last stored counter is the simulators' final value, give or take LATENCY: cumulative
    # counters lose no count through the outage.
    wraps = {"filler": 65536, "capper": 2**32, "labeler": 2**32}
    ahead = answered_within(cfg)
    for machine, wrap in wraps.items():
        late = ahead[machine]
        for name, key in [("good_count", "good_counter"), ("reject_count", "reject_counter")]:
            series = [(t, v) for m, n, t, v in stored if (m, n) == (machine, name)]
            assert len(series) >= 2, (machine, name)
            wrong = []
            for t, v in series:
                if t < serving:
                    continue
                allowed = {x % wrap for x in in_force(truth, machine, key, t - LATENCY, t + late)}
                if v not in allowed:
                    wrong.append((t.isoformat(), v, min(allowed), max(allowed)))
            assert not wrong, (machine, name, len(series), wrong[:5])
            lo = truth_file.value_at(truth, machine, key, truth.end - LATENCY)
            hi = truth_file.value_at(truth, machine, key, truth.end)
            assert series[-1][1] in {v % wrap for v in range(lo, hi + 1)}, (machine, name)
        states = [(t, v) for m, n, t, v in stored if (m, n) == (machine, "state")]
        assert all(
            v in in_force(truth, machine, "state", t - LATENCY, t + late)
            for t, v in states
            if t >= serving
        )
    text = log.read_text()
    assert "database unavailable, spooling readings" in text
    assert "spool holds" in text  # the restarted collector found the spool and replayed it
    assert "spool drained" in text


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^shopfloor_{name} (\S+)$", text, re.M)
    assert found, name
    return float(found[1])


async def test_full_spool_with_block_policy_bounds_what_a_kill_can_lose(
    own_cluster: LocalCluster, tmp_path: Path
) -> None:
    """issue 11, item 6: database away and the spool at its budget with policy `block`. The
    collector takes no more readings once a batch has no home, so what it holds in memory stays
    that batch and does not grow while the outage lasts (before, the queue filled to
    `queue_rows`: a 7.9 s gap at SIGKILL). MQTT stays unacknowledged; after a SIGKILL and the
    database's return, every packer case is stored exactly once."""
    url = _fresh_database(own_cluster)
    cfg, broker, ports, config = _demo_plant(tmp_path)
    spool, log, truth_path = tmp_path / "spool", tmp_path / "collector.log", tmp_path / "truth"
    api = free_port()
    small = {"SHOPFLOOR_COLLECTOR_SPOOL_MAX_MB": "0.02", "SHOPFLOOR_API_PORT": str(api)}
    collector = _start_collector(config, url, spool, log, "run", **small)
    metrics = f"http://127.0.0.1:{api}/metrics"
    try:
        with SimulatorThread(cfg, speed=SPEED, ports=ports, truth_path=truth_path):
            await eventually(
                lambda: _count(url, "SELECT count(*) FROM readings") > 200,
                within=60,
                what=lambda: log.read_text(),
            )
            await asyncio.to_thread(own_cluster.stop, mode="fast")
            seen: dict[str, float] = {}

            def homeless() -> bool:
                text = httpx.get(metrics, timeout=5).text
                seen.update(
                    queue=_metric(text, "queue_rows"), taking=_metric(text, "taking_readings")
                )
                return seen["taking"] == 0

            await eventually(homeless, within=60, what=lambda: f"{seen}\n{log.read_text()}")
            held = seen["queue"]
            await asyncio.sleep(3)  # the line runs on; nothing more is taken
            assert homeless() and seen["queue"] == held < 1000, (held, seen)
            health = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{api}/healthz")
            assert health.status_code == 503 and health.json()["status"] == "failing"
            collector.send_signal(signal.SIGKILL)
            collector.wait(10)
            await asyncio.to_thread(own_cluster.start)
            collector = _start_collector(config, url, spool, log)
            await eventually(
                lambda: _spooled_rows(spool) == 0, within=90, what=lambda: log.read_text()
            )
            await asyncio.sleep(3)  # live traffic after the replay
        await asyncio.sleep(2)
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(30) == 0, log.read_text()
    finally:
        if collector.poll() is None:
            collector.kill()
        broker.stop()
    assert _duplicates_and_rejected(url) == (0, 0)
    _assert_packer_cases_exactly_once(truth_file.load(truth_path), _stored(url))
    assert "spool full" in log.read_text()
