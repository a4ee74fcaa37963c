"""The MQTT adapter reading the bundled packer simulator through Mosquitto: all of the truth."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path

from adapters.base import Quality, Reading
from adapters.mqtt import MqttAdapter
from config.sources.mqtt import MqttSource
from simulators import run_simulators
from simulators.truth import load, value_at
from tests.services import Mosquitto, eventually
from tests.simulators.helpers import demo_config

SPEED = 60.0
DEADLINE_S = 20.0


async def test_readings_match_the_simulator_truth(mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = demo_config(mosquitto.port)
    source = next(s for s in cfg.sources if s.name == "packer-gateway")
    assert isinstance(source, MqttSource)
    source = source.model_copy(update={"client_id": f"shopfloor-sim-test-{time.time_ns()}"})
    cfg = cfg.model_copy(update={"sources": [source]})
    readings: list[Reading] = []

    async def sink(batch: Sequence[Reading]) -> None:
        readings.extend(batch)

    adapter = MqttAdapter(source, sink)
    task = asyncio.create_task(adapter.run())
    await eventually(
        lambda: adapter.status.connected or task.done(), DEADLINE_S, lambda: str(adapter.status)
    )
    assert not task.done(), adapter.status
    await asyncio.sleep(0.2)  # SUBACK follows CONNACK

    names = {t.reading_address: t.name for t in source.tags}
    truth_path = tmp_path / "truth.jsonl"
    async with run_simulators(cfg, speed=SPEED, seed=5, truth_path=truth_path):
        await eventually(
            lambda: sum(names[r.address] == "good_count" for r in readings) >= 10,
            DEADLINE_S,
            lambda: f"too few readings: {adapter.status}",
        )
    truth = load(truth_path)
    parts = [r for r in truth.records if r["type"] == "count" and r["machine"] == "packer"]
    # QoS 1: every part the simulator published arrives, none twice.
    await eventually(
        lambda: sum(names[r.address] == "good_count" for r in readings) >= len(parts),
        DEADLINE_S,
        lambda: f"parts missing: {adapter.status}",
    )
    await adapter.stop()
    await task

    assert adapter.status.malformed == 0
    by_ts = {dt.datetime.fromisoformat(p["ts"]): p for p in parts}  # ISO 8601 in full precision
    got_parts = [r for r in readings if names[r.address] in ("good_count", "reject_count")]
    assert len(got_parts) == 2 * len(parts)
    for r in readings:
        assert r.quality == Quality.GOOD and r.source == "packer-gateway"
        name = names[r.address]
        if name in ("good_count", "reject_count"):
            part = by_ts[r.ts]  # the payload's timestamp is the part's time
            assert r.value == part[name.removesuffix("_count")], (name, r)
        else:
            key = {"state": "state", "stop_reason": "reason", "temperature": "temperature"}[name]
            assert r.value == value_at(truth, "packer", key, r.ts), (name, r)
