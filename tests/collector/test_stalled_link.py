"""A database link that stops answering without closing (a WAN dropping packets) is an outage:
the batch in flight goes to the spool after `write_timeout_s`, /healthz says the database is
away, and when the link answers again everything is stored exactly once. Before, the write
waited for the kernel's retransmissions (about 15 minutes) with /healthz saying ok."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg

from collector.service import Collector
from config import parse_config
from tests.mqtt_line import mqtt_line
from tests.services import Mosquitto, Publisher, database_link, eventually

T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)


def config(broker_port: int, root: str) -> str:
    part = "signal: good_count, counter: delta, field: n, timestamp_field: ts"
    return mqtt_line(
        broker_port,
        root,
        [f"{{machine: m, name: good, topic: {root}/part, {part}}}"],
        settings=["edge: stalled-pc", "collector: {batch_age_ms: 20, write_timeout_s: 2}"],
    )


def parts(url: str) -> tuple[int, int]:
    """(rows, distinct times) of the part counter."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT time) FROM readings").fetchone()
    assert row is not None
    return row[0], row[1]


async def test_a_stalled_link_spools_and_loses_nothing(
    mosquitto: Mosquitto, database_url: str, tmp_path: Path
) -> None:
    root = f"stall-{uuid.uuid4().hex[:8]}"
    cfg = parse_config(config(mosquitto.port, root))
    pub = Publisher(mosquitto.port)

    async def publish(first: int, n: int) -> None:
        for i in range(first, first + n):
            ts = (T0 + dt.timedelta(seconds=i)).isoformat()
            await pub.publish(f"{root}/part", json.dumps({"ts": ts, "n": 1}))

    with database_link(database_url) as link:
        collector = Collector(cfg, link.url, spool_dir=tmp_path)
        ready = asyncio.Event()
        running = asyncio.create_task(collector.run(ready))
        health: dict[str, Any] = {}

        def now_health() -> dict[str, Any]:
            health.update(collector.health())
            return health

        try:
            await asyncio.wait_for(ready.wait(), 30)
            await eventually(lambda: now_health()["sources"][0]["connected"], 30, "subscribed")
            await publish(0, 20)
            await eventually(lambda: parts(database_url) == (20, 20), 30, "the first 20 parts")

            link.stall()
            publishing = asyncio.create_task(publish(20, 20))  # acked once spooled
            await eventually(
                lambda: now_health()["spool"]["rows"] > 0, 30, lambda: f"spooled: {health}"
            )
            db = health["database"]
            assert (db["connected"], db["outages"]) == (False, 1), db
            assert "had no answer within 2 s" in (db["last_error"] or ""), db
            assert health["status"] != "ok"
            await asyncio.wait_for(publishing, 30)

            link.restore()
            await eventually(lambda: parts(database_url) == (40, 40), 60, "all 40 parts")
            await eventually(lambda: now_health()["spool"]["rows"] == 0, 30, "spool drained")
            assert health["database"]["connected"] and health["database"]["outages"] == 1
        finally:
            collector.stop()
            await running
            pub.close()
    assert parts(database_url) == (40, 40)  # nothing lost, nothing twice
