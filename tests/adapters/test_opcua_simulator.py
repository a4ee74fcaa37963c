"""The OPC UA adapter reading the bundled filler simulator: every reading is the truth."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from adapters.base import Quality, Reading
from adapters.opcua import OpcUaAdapter
from config.sources.opcua import OpcUaSource, OpcUaTag
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


async def test_polling_an_unknown_node(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Polling, one tag on a node the simulator does not serve: one WARNING naming the status,
    counted once in status.errors, no reading for it; the other tags are read on every poll."""
    cfg = demo_config()
    served = next(s for s in cfg.sources if s.name == "filler-plc")
    assert isinstance(served, OpcUaSource)
    cfg = cfg.model_copy(update={"sources": [served]})  # the simulator serves the real tags
    missing = OpcUaTag.model_validate(
        {"machine": "filler", "name": "missing", "node": "ns=2;s=filler.no_such_node"}
    )
    source = served.model_copy(
        update={"mode": "polling", "poll_interval_s": 0.05, "tags": [*served.tags, missing]}
    )
    others = {t.reading_address: t.name for t in served.tags}
    readings: list[Reading] = []

    async def sink(batch: Sequence[Reading]) -> None:
        readings.extend(batch)

    def per_tag() -> dict[str, int]:
        return {a: sum(r.address == a for r in readings) for a in others}

    def warnings() -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.levelno == logging.WARNING and "BadNodeIdUnknown" in r.getMessage()
        ]

    truth_path = tmp_path / "truth.jsonl"
    async with run_simulators(cfg, speed=SPEED, seed=5, truth_path=truth_path) as sims:
        adapter = OpcUaAdapter(source, sink)
        task = asyncio.create_task(adapter.run())

        def task_alive() -> None:
            assert not task.done()

        await eventually(
            lambda: bool(warnings()), DEADLINE_S, lambda: f"no warning: {adapter.status}"
        )
        before = per_tag()
        await eventually(  # several more polls, each reading every other tag
            lambda: all(n >= before[a] + 5 for a, n in per_tag().items()),
            DEADLINE_S,
            lambda: f"the other tags stopped: {per_tag()} after {before}; {adapter.status}",
            each=task_alive,
        )
        status = adapter.status
        assert status.connected and status.errors == 1, status  # once, not once per poll
        assert status.last_error == "ns=2;s=filler.no_such_node: read returned BadNodeIdUnknown"
        await adapter.stop()
        await task
        epoch = sims.clock.epoch  # type: ignore[union-attr]

    [warning] = warnings()  # exactly one, however many polls
    assert warning.getMessage() == (
        "filler-plc: tag filler.missing (ns=2;s=filler.no_such_node): "
        "read returned BadNodeIdUnknown"
    )
    assert not [r for r in caplog.records if "StatusCode(value=" in r.getMessage()]
    assert missing.reading_address not in {r.address for r in readings}
    truth = load(truth_path)
    wraps = {t.reading_address: t.wrap for t in served.tags}
    for r in readings:
        assert r.quality == Quality.GOOD and r.ts >= epoch
        expected = value_at(truth, "filler", TRUTH_KEY[others[r.address]], r.ts)
        if wraps[r.address]:
            expected %= wraps[r.address]
        assert r.value == expected, (others[r.address], r)
