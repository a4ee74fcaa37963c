"""The OPC UA adapter reading the bundled filler simulator: every reading is the truth."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from adapters.base import Quality, Reading
from adapters.opcua import OpcUaAdapter
from config.sources.opcua import OpcUaSource
from simulators import run_simulators
from simulators.truth import load, value_at
from tests.services import eventually
from tests.simulators.helpers import demo_config

SPEED = 60.0
DEADLINE_S = 20.0
TRUTH_KEY = {
    "state": "state",
    "stop_reason": "reason",
    "good_count": "good_counter",
    "reject_count": "reject_counter",
    "temperature": "temperature",
    "speed": "speed",
}


async def test_readings_match_the_simulator_truth(tmp_path: Path) -> None:
    cfg = demo_config()
    source = next(s for s in cfg.sources if s.name == "filler-plc")
    assert isinstance(source, OpcUaSource)
    source = source.model_copy(
        update={"publishing_interval_ms": 50, "sampling_interval_ms": 0, "queue_size": 1000}
    )
    cfg = cfg.model_copy(update={"sources": [source]})
    readings: list[Reading] = []

    async def sink(batch: Sequence[Reading]) -> None:
        readings.extend(batch)

    truth_path = tmp_path / "truth.jsonl"
    async with run_simulators(cfg, speed=SPEED, seed=5, truth_path=truth_path) as sims:
        adapter = OpcUaAdapter(source, sink)
        task = asyncio.create_task(adapter.run())
        counts = f"{source.tags[0].reading_address.rsplit('.', 1)[0]}.good_count"

        def task_alive() -> None:
            assert not task.done()

        await eventually(
            lambda: sum(r.address == counts for r in readings) >= 20,
            DEADLINE_S,
            lambda: f"too few readings: {adapter.status}",
            each=task_alive,
        )
        await adapter.stop()
        await task
        epoch = sims.clock.epoch  # type: ignore[union-attr]

    truth = load(truth_path)
    names = {t.reading_address: t.name for t in source.tags}
    wraps = {t.reading_address: t.wrap for t in source.tags}
    assert {names[r.address] for r in readings} == set(TRUTH_KEY)
    for r in readings:
        assert r.quality == Quality.GOOD and r.source == "filler-plc"
        assert r.ts >= epoch and r.ts.tzinfo == dt.UTC
        expected = value_at(truth, "filler", TRUTH_KEY[names[r.address]], r.ts)
        if wraps[r.address]:
            expected %= wraps[r.address]
        assert r.value == expected, (names[r.address], r)
