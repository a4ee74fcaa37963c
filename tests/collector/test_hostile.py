"""Hostile input against the whole collector (real broker, real database): a poison message, an
absurd timestamp, a failing task. Collection goes on, what was refused is kept with its reason,
/healthz tells the truth, and a stop always ends."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from adapters.mqtt.adapter import MqttAdapter
from collector.dbsink import DatabaseSink
from collector.service import Collector
from collector.spool import Spool
from collector.supervisor import CollectorFailed
from config import ShopfloorConfig, parse_config
from tests.mqtt_line import mqtt_line
from tests.services import Mosquitto, Publisher, eventually


def config(broker_port: int, root: str) -> ShopfloorConfig:
    tags = [
        f"{{machine: m, name: state, signal: state, topic: {root}/state, field: v, "
        "timestamp_field: ts}",
        f"{{machine: m, name: note, topic: {root}/note, field: v}}",
        f"{{machine: m, name: temp, topic: {root}/temp, field: v, timestamp_field: ts}}",
    ]
    settings = [
        "kpi: {heartbeat_s: 1, max_gap_s: 5}",
        "collector: {batch_age_ms: 20}",
        "rollups: {interval_s: 1}",
    ]
    source = ["reconnect_min_s: 0.2", "reconnect_max_s: 1"]
    return parse_config(mqtt_line(broker_port, root, tags, source=source, settings=settings))


def now_iso(seconds: float = 0.0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


def query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def stored(url: str, name: str) -> list[tuple]:
    return query(
        url,
        "SELECT r.value, r.text_value FROM readings r JOIN tags t ON t.id = r.tag_id "
        "WHERE t.name = %s ORDER BY r.time",
        (name,),
    )


def rejected(url: str) -> list[tuple[str | None, str | None, str]]:
    return query(url, "SELECT source, address, reason FROM rejected_readings ORDER BY id")


@contextlib.asynccontextmanager
async def running(cfg: ShopfloorConfig, url: str, spool: Path) -> AsyncIterator[Collector]:
    collector = Collector(cfg, url, spool_dir=spool)
    ready = asyncio.Event()
    task = asyncio.create_task(collector.run(ready))
    await asyncio.wait_for(ready.wait(), 30)
    await eventually(lambda: collector.adapters[0].status.connected, within=30, what="broker")
    try:
        yield collector
    finally:
        collector.stop()
        # A stop always ends (hang guard: the collector bounds itself well below this).
        with contextlib.suppress(CollectorFailed):
            await asyncio.wait_for(task, 60)


@pytest.fixture
def root() -> str:
    return f"hostile-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cfg(mosquitto: Mosquitto, root: str) -> ShopfloorConfig:
    return config(mosquitto.port, root)


async def test_poison_messages_are_quarantined_and_collection_goes_on(
    cfg: ShopfloorConfig, publisher: Publisher, database_url: str, tmp_path: Path, root: str
) -> None:
    """issue 11, items 1-3: a lone surrogate, JSON 10,000 deep, timestamps beyond year 1 and
    9999 in UTC, readings stamped in year 1 and in 1970. Before, the first stopped every source
    for good (the writer task died, /healthz said ok, SIGTERM hung) and the others killed the
    MQTT source or broke rollups and every KPI request."""
    async with running(cfg, database_url, tmp_path) as collector:
        await publisher.publish(f"{root}/note", b'{"v": "lone \\ud800 surrogate"}')
        await publisher.publish(f"{root}/temp", b"[" * 10_000 + b"]" * 10_000)
        await publisher.publish(f"{root}/temp", b'{"v": 1, "ts": "0001-01-01T00:30:00+01:00"}')
        await publisher.publish(f"{root}/temp", b'{"v": 1, "ts": "9999-12-31T23:59:59-01:00"}')
        await publisher.publish(f"{root}/state", b'{"v": 2, "ts": "0001-01-01T00:00:00Z"}')
        await publisher.publish(f"{root}/state", b'{"v": 2, "ts": "1970-01-01T00:00:00Z"}')
        await publisher.publish(f"{root}/state", json.dumps({"v": 1, "ts": now_iso(-5)}))
        await publisher.publish(f"{root}/temp", json.dumps({"v": 21.5, "ts": now_iso()}))
        await eventually(
            lambda: stored(database_url, "temp") == [(21.5, None)], within=30, what="temp"
        )
        kept = sorted(rejected(database_url), key=lambda k: (k[1], k[2]))
        assert kept == [
            (
                "gw",
                f"{root}/note#v",
                "text_value is not valid Unicode (surrogates not allowed at position 5)",
            ),
            ("gw", f"{root}/state#v", kept[1][2]),
            ("gw", f"{root}/state#v", kept[2][2]),
            ("gw", f"{root}/temp", "payload is not JSON we accept: nested too deeply"),
            ("gw", f"{root}/temp", "timestamp '0001-01-01T00:30:00+01:00' is out of range"),
            ("gw", f"{root}/temp", "timestamp '9999-12-31T23:59:59-01:00' is out of range"),
        ]  # a malformed payload under its topic, a refused reading under its tag's address
        assert kept[1][2].startswith("reading time 0001-01-01T00:00:00+00:00 is 2025")
        assert kept[2][2].startswith("reading time 1970-01-01T00:00:00+00:00 is 56")
        # the refused state never reached the heartbeat or the rollups: only the good one
        await eventually(lambda: collector.rollups_at is not None, within=30, what="rollup")
        assert {v for v, _ in stored(database_url, "state")} == {1.0}
        first = query(database_url, "SELECT min(time) FROM readings")[0][0]
        assert first > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        marks = query(database_url, "SELECT computed_until, dirty_since FROM rollup_state")
        assert all(t is None or t > first - dt.timedelta(minutes=5) for t in marks[0])
        health = collector.health()
        source = health["sources"][0]
        assert (source["malformed"], source["rejected"]) == (3, 3)
        assert health["database"]["quarantined"] == 6
        assert health["status"] == "ok", health["problems"]
        assert all(t["running"] and t["error"] is None for t in health["tasks"].values())

    # Quarantined messages were acknowledged: a new session does not bring them back.
    async with running(cfg, database_url, tmp_path) as collector:
        await publisher.publish(f"{root}/temp", json.dumps({"v": 22.5, "ts": now_iso()}))
        await eventually(
            lambda: len(stored(database_url, "temp")) == 2, within=30, what="second temp"
        )
        assert len(rejected(database_url)) == 6


async def test_a_failing_writer_stops_the_collector_and_loses_nothing(
    cfg: ShopfloorConfig,
    publisher: Publisher,
    database_url: str,
    tmp_path: Path,
    root: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fault nobody foresaw in the writer task (injected): logged, the collector stops and
    says why (the process exits non-zero), the rows it held go to the spool, the MQTT message it
    could not store stays unacknowledged; the next collector stores both, once."""
    real_write = DatabaseSink.write
    armed = [False]

    async def faulty_write(self: DatabaseSink, rows, rejected=()):  # type: ignore[no-untyped-def]
        if armed[0]:
            raise RuntimeError("injected fault")
        return await real_write(self, rows, rejected)

    monkeypatch.setattr(DatabaseSink, "write", faulty_write)
    collector = Collector(cfg, database_url, spool_dir=tmp_path)
    ready = asyncio.Event()
    task = asyncio.create_task(collector.run(ready))
    await asyncio.wait_for(ready.wait(), 30)
    await eventually(lambda: collector.adapters[0].status.connected, within=30, what="broker")
    armed[0] = True
    await publisher.publish(f"{root}/temp", json.dumps({"v": 7.0, "ts": now_iso()}))
    with pytest.raises(CollectorFailed, match="pipeline failed: RuntimeError: injected fault"):
        await asyncio.wait_for(task, 60)
    assert collector.supervisor.tasks["pipeline"].failures == 1
    assert collector.health()["status"] == "failing"
    assert stored(database_url, "temp") == []
    assert len(Spool(tmp_path, max_bytes=10**9)) >= 1  # the held rows, kept
    armed[0] = False
    async with running(cfg, database_url, tmp_path):
        await eventually(
            lambda: stored(database_url, "temp") == [(7.0, None)], within=30, what="stored"
        )
        await asyncio.sleep(0.5)  # the spool replay and the redelivery both ran by now
        assert stored(database_url, "temp") == [(7.0, None)]  # once: writes are idempotent


async def test_a_failing_adapter_is_restarted_and_reported(
    cfg: ShopfloorConfig,
    publisher: Publisher,
    database_url: str,
    tmp_path: Path,
    root: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An adapter whose task fails (injected) is logged, counted, reported as failing, and
    started again: its messages are stored after all."""
    real_consume = MqttAdapter._consume
    faults = [1]

    async def faulty_consume(self: MqttAdapter) -> bool:
        if faults[0]:
            faults[0] -= 1
            raise RuntimeError("injected adapter fault")
        return await real_consume(self)

    monkeypatch.setattr(MqttAdapter, "_consume", faulty_consume)
    async with running(cfg, database_url, tmp_path) as collector:
        task = collector.supervisor.tasks["adapter gw"]
        await eventually(lambda: task.failures == 1, within=30, what="the fault")
        health = collector.health()
        assert health["status"] == "failing"
        assert "adapter gw failed: RuntimeError: injected adapter fault" in health["problems"]
        assert 'shopfloor_task_failures_total{task="adapter gw"} 1' in collector.metrics()
        await publisher.publish(f"{root}/temp", json.dumps({"v": 3.0, "ts": now_iso()}))
        await eventually(
            lambda: stored(database_url, "temp") == [(3.0, None)], within=30, what="restart"
        )
        assert task.running


async def test_a_stop_ends_even_when_an_adapter_does_not(
    cfg: ShopfloorConfig,
    publisher: Publisher,
    database_url: str,
    tmp_path: Path,
    root: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM must end within a bound (systemd kills after TimeoutStopSec): an adapter whose
    stop never returns (injected) is given ADAPTERS_STOP_S, then cancelled; what the pipeline
    holds is still stored."""
    from collector import service

    async def stuck(self: MqttAdapter) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(service, "ADAPTERS_STOP_S", 0.5)
    monkeypatch.setattr(MqttAdapter, "stop", stuck)
    async with running(cfg, database_url, tmp_path) as collector:
        await publisher.publish(f"{root}/temp", json.dumps({"v": 4.0, "ts": now_iso()}))
        await eventually(lambda: collector.adapters[0].status.readings == 1, what="reading")
    # `running` returned: the stop ended although the adapter's never did
    assert stored(database_url, "temp") == [(4.0, None)]
    assert not collector.supervisor.tasks["adapter gw"].running
