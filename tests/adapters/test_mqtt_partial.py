"""issue 14 through the whole collector (real broker, real database): a JSON message that lacks
a configured field stores the fields it has; the missing one is counted for its tag in /healthz
(`sources[].missing_fields`) and /metrics (`shopfloor_source_missing_fields_total`), not as a
malformed payload, and nothing is quarantined."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry, generate_latest

from collector.service import Collector
from config import parse_config
from tests.mqtt_line import mqtt_line
from tests.services import Mosquitto, Publisher, eventually


def config(broker_port: int, topic: str) -> str:
    tags = [
        f"{{machine: m, name: a, topic: {topic}, field: a}}",
        f"{{machine: m, name: b, topic: {topic}, field: b}}",
    ]
    return mqtt_line(broker_port, topic, tags, settings=["collector: {batch_age_ms: 20}"])


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


STORED = "SELECT t.name, r.value FROM readings r JOIN tags t ON t.id = r.tag_id ORDER BY t.name"


async def test_missing_field_is_counted_per_tag_in_healthz_and_metrics(
    mosquitto: Mosquitto, publisher: Publisher, database_url: str, tmp_path: Path
) -> None:
    topic = f"partial-{uuid.uuid4().hex[:8]}"
    collector = Collector(
        parse_config(config(mosquitto.port, topic)), database_url, spool_dir=tmp_path
    )
    ready = asyncio.Event()
    task = asyncio.create_task(collector.run(ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await eventually(lambda: collector.adapters[0].status.connected, within=30, what="broker")
        await asyncio.sleep(0.2)  # SUBACK follows CONNACK
        await publisher.publish(topic, '{"a": 1}')
        await eventually(
            lambda: query(database_url, STORED) == [("a", 1.0)],
            within=30,
            what=lambda: str(query(database_url, STORED)),
        )
        health = collector.health()
        [source] = health["sources"]
        assert source["missing_fields"] == {"m.b": 1}
        assert (source["malformed"], source["rejected"], source["readings"]) == (0, 0, 1)
        assert health["database"]["quarantined"] == 0
        assert query(database_url, "SELECT count(*) FROM rejected_readings") == [(0,)]
        assert health["status"] == "ok", health["problems"]

        registry = CollectorRegistry()
        registry.register(collector.prometheus)
        metrics = generate_latest(registry).decode()
        # prometheus_client writes labels sorted by name, values as floats
        assert (
            'shopfloor_source_missing_fields_total{protocol="mqtt",source="gw",tag="m.b"} 1.0'
            in metrics
        )
        assert 'tag="m.a"' not in metrics
        assert 'shopfloor_source_malformed_total{protocol="mqtt",source="gw"} 0.0' in metrics
    finally:
        collector.stop()
        await asyncio.wait_for(task, 60)
