"""The collector and API in one process over a real broker and database: mapping, the state
heartbeat, deadband, malformed payloads counted, and what /healthz and /metrics report."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path

import httpx
import psycopg

from collector.runner import run_services
from config import parse_config
from tests.mqtt_line import mqtt_line
from tests.services import Mosquitto, Publisher, eventually, free_port

# Recent: the collector refuses readings stamped more than max_reading_age_days ago.
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)


def config(broker_port: int, api_port: int, root: str) -> str:
    tags = [
        f"{{machine: m, name: state, signal: state, topic: {root}/state, field: v, "
        "timestamp_field: ts}",
        f"{{machine: m, name: good, signal: good_count, counter: delta, topic: {root}/part, "
        "field: n, timestamp_field: ts}",
        f"{{machine: m, name: temp, topic: {root}/temp, field: v, timestamp_field: ts, "
        "deadband: 0.5}",
    ]
    settings = [
        f"api: {{port: {api_port}}}",
        "kpi: {heartbeat_s: 1, max_gap_s: 5}",
        "collector: {batch_age_ms: 20}",
    ]
    return mqtt_line(broker_port, root, tags, settings=settings)


def _ts(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


def _rows(url: str, name: str) -> list[tuple[dt.datetime, float]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT r.time, r.value FROM readings r JOIN tags t ON t.id = r.tag_id "
            "WHERE t.name = %s ORDER BY r.time",
            (name,),
        ).fetchall()


async def test_collector_and_api_in_one_process(
    mosquitto: Mosquitto, database_url: str, tmp_path: Path
) -> None:
    root = f"svc-{uuid.uuid4().hex[:8]}"
    api_port = free_port()
    cfg = parse_config(config(mosquitto.port, api_port, root))
    stop, ready = asyncio.Event(), asyncio.Event()
    services = asyncio.create_task(
        run_services(
            cfg, database_url, collect=True, serve=True, spool_dir=tmp_path, stop=stop, ready=ready
        )
    )
    pub = Publisher(mosquitto.port)
    api = f"http://127.0.0.1:{api_port}"
    try:
        await asyncio.wait_for(ready.wait(), 60)
        async with httpx.AsyncClient(base_url=api) as client:

            async def connected() -> None:
                nonlocal health
                health = (await client.get("/healthz")).json()

            health: dict = {}
            await eventually(
                lambda: bool(health) and health["sources"][0]["connected"],
                within=30,
                what=lambda: str(health),
                each=connected,
                interval=0.2,
            )
            await pub.publish(f"{root}/state", json.dumps({"ts": _ts(0), "v": 1}))
            for i, temp in enumerate([20.0, 20.3, 20.6, 20.7, 21.2]):
                await pub.publish(f"{root}/temp", json.dumps({"ts": _ts(i), "v": temp}))
            for i in range(3):
                await pub.publish(f"{root}/part", json.dumps({"ts": _ts(10 + i), "n": 1}))
            await pub.publish(f"{root}/part", b"{not json")
            await pub.publish(f"{root}/nothing-here", b"{}")

            # The state is held: re-recorded every heartbeat_s in the PLC's time base.
            await eventually(
                lambda: len(_rows(database_url, "state")) >= 3, within=30, what="heartbeats"
            )
            states = _rows(database_url, "state")
            assert [t for t, _ in states[:3]] == [T0 + dt.timedelta(seconds=k) for k in range(3)]
            assert {v for _, v in states} == {1.0}
            assert [v for _, v in _rows(database_url, "temp")] == [20.0, 20.6, 21.2]
            assert [v for _, v in _rows(database_url, "good")] == [1.0, 1.0, 1.0]

            await connected()
            source = health["sources"][0]
            assert (source["name"], source["protocol"], source["malformed"]) == ("gw", "mqtt", 1)
            assert source["filtered"] == 2 and source["readings"] >= 9
            assert health["status"] == "ok" and health["database"]["connected"]
            assert health["spool"]["rows"] == 0 and health["database"]["rows_written"] >= 9

            metrics = (await client.get("/metrics")).text
            # prometheus_client writes labels sorted by name, values as floats
            assert 'shopfloor_source_malformed_total{protocol="mqtt",source="gw"} 1.0' in metrics
            assert 'shopfloor_source_connected{protocol="mqtt",source="gw"} 1.0' in metrics
            assert "shopfloor_database_up 1" in metrics
            assert "# TYPE shopfloor_rows_written_total counter" in metrics
    finally:
        pub.close()
        stop.set()
        await asyncio.wait_for(services, 30)
    assert services.exception() is None
