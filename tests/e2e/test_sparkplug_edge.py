"""The simulator's Sparkplug edge node read by the host application through a real Mosquitto:
values and types, aliases-only DDATA, a forced seq gap answered by a Rebirth, NDEATH on stop,
a restarted host (collector) that asks for births, and a broker restart."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Quality, Reading
from adapters.sparkplug import SparkplugAdapter
from config import ShopfloorConfig
from config.sources import SparkplugSource
from simulators import run_simulators
from simulators.frontends.sparkplug import SparkplugFrontEnd
from simulators.truth import Truth, load, snapshots, value_at
from tests.services import Mosquitto, eventually, unique
from tests.simulators.helpers import demo_config

DEADLINE_S = 20.0
SPEED = 60.0
METRICS = {
    "state": "Status/State",
    "stop_reason": "Status/Reason",
    "good_count": "Counts/Good",
    "reject_count": "Counts/Reject",
    "temperature": "Process/Temperature",
}


def sparkplug_config(port: int, group: str, **options: Any) -> ShopfloorConfig:
    """The demo line with the packer as a Sparkplug edge node instead of its JSON gateway."""
    cfg = demo_config(port)
    tags = [
        {
            "machine": "packer",
            "name": name,
            "signal": name if name != "temperature" else "measurement",
            "group": group,
            "edge_node": "packer-gw",
            "device": "packer",
            "metric": metric,
        }
        for name, metric in METRICS.items()
    ]
    source = SparkplugSource.model_validate(
        {
            "protocol": "sparkplug",
            "name": "packer-edge",
            "host": "127.0.0.1",
            "port": port,
            "client_id": unique("host-"),
            "host_id": unique("h"),
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "rebirth_wait_s": 0.2,
            "reorder_timeout_s": 0.2,
            "tags": tags,
            **options,
        }
    )
    others = [s for s in cfg.sources if s.name != "packer-gateway"]
    return cfg.model_copy(update={"sources": [*others, source]})


class Sink:
    def __init__(self) -> None:
        self.readings: list[Reading] = []

    async def __call__(self, batch: Sequence[Reading]) -> None:
        self.readings.extend(batch)

    def of(self, metric: str) -> list[Reading]:
        return [r for r in self.readings if r.address.endswith(f"#{metric}")]

    async def wait_for(self, check: Callable[[], bool], what: str) -> None:
        await eventually(check, DEADLINE_S, lambda: f"{what}; got {len(self.readings)} readings")


def truth_values(truth: Truth, key: str, ts: dt.datetime) -> list[float]:
    """The values `key` of the packer took in [ts, ts + 1 ms): Sparkplug stamps are whole
    milliseconds (the event's time truncated), and at speed 60 two events can share one."""
    values = [value_at(truth, "packer", key, ts)]
    values += [
        snap[key]
        for at, snap in snapshots(truth, "packer")
        if ts <= at < ts + dt.timedelta(milliseconds=1) and key in snap
    ]
    return [float(v) for v in values if v is not None]


def spb(cfg: ShopfloorConfig) -> SparkplugSource:
    source = next(s for s in cfg.sources if isinstance(s, SparkplugSource))
    return source


async def host(cfg: ShopfloorConfig, sink: Sink) -> tuple[SparkplugAdapter, asyncio.Task[None]]:
    adapter = SparkplugAdapter(spb(cfg), sink)
    task = asyncio.create_task(adapter.run())
    try:
        await eventually(lambda: adapter.status.connected, DEADLINE_S, "host connected")
    except AssertionError:
        await adapter.stop()
        await task
        raise
    return adapter, task


def edge_of(sims: Any) -> SparkplugFrontEnd:
    fe = sims.frontend("packer-edge")
    assert isinstance(fe, SparkplugFrontEnd)
    return fe


async def test_values_types_and_aliases_match_the_truth(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    cfg = sparkplug_config(mosquitto.port, unique("L"))
    sink = Sink()
    adapter, task = await host(cfg, sink)
    try:
        async with run_simulators(
            cfg, speed=SPEED, seed=3, truth_path=tmp_path / "t.jsonl"
        ) as sims:
            edge = edge_of(sims)
            await sink.wait_for(lambda: len(sink.of("Counts/Good")) >= 5, "parts counted")
            assert edge.births == 1 and edge.rebirths == 0
        truth = load(tmp_path / "t.jsonl")
        births, death = [r for r in truth.records if r["type"] == "sparkplug"]
        assert (death["what"], death["reason"], death["bd_seq"]) == ("death", "stop", 0)
        src = spb(cfg)
        assert (births["what"], births["reason"], births["bd_seq"]) == ("births", "connect", 0)
        assert births["aliases"] == {t.reading_address: i for i, t in enumerate(src.tags, 1)}
        for name, metric in METRICS.items():
            readings = sink.of(metric)
            assert readings, metric
            key = {
                "stop_reason": "reason",
                "good_count": "good_counter",
                "reject_count": "reject_counter",
            }.get(name, name)
            for r in readings:
                if r.quality == Quality.GOOD:
                    assert r.value in truth_values(truth, key, r.ts), (metric, r)
        assert all(r.text is None for r in sink.readings)
        assert adapter.status.extra["seq_gaps"] == 0
        assert adapter.status.extra["unknown_metric"] == 0
        assert adapter.status.extra["rebirths_sent"] == 0
        # the edge node's stop: NDEATH, so every metric ends BAD with no value
        await sink.wait_for(lambda: sink.of("Status/State")[-1].quality == Quality.BAD, "NDEATH")
        for metric in METRICS.values():
            last = sink.of(metric)[-1]
            assert (last.value, last.quality) == (None, Quality.BAD), metric
    finally:
        await adapter.stop()
        await task


async def test_seq_gap_rebirth_and_host_restart(mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = sparkplug_config(mosquitto.port, unique("L"))
    sink = Sink()
    adapter, task = await host(cfg, sink)
    try:
        async with run_simulators(cfg, speed=SPEED, seed=4, truth_path=tmp_path / "t") as sims:
            edge = edge_of(sims)
            await sink.wait_for(lambda: len(sink.of("Process/Temperature")) >= 2, "data")
            edge.skip_seq()
            await eventually(lambda: edge.rebirths == 1, DEADLINE_S, "the node asked to rebirth")
            assert adapter.status.extra["seq_gaps"] == 1
            assert adapter.status.extra["rebirths_sent"] == 1
            before = len(sink.of("Process/Temperature"))
            await sink.wait_for(lambda: len(sink.of("Process/Temperature")) > before + 1, "resumed")
            # the host restarts (a collector restart): it knows no node, asks, and is answered
            await adapter.stop()
            await task
            sink2 = Sink()
            adapter, task = await host(cfg, sink2)
            await eventually(lambda: edge.rebirths == 2, DEADLINE_S, "rebirth after restart")
            assert adapter.status.extra["data_before_birth"] >= 1
            await sink2.wait_for(lambda: len(sink2.of("Status/State")) >= 1, "state after restart")
            assert edge.births == 3
        notes = [r for r in load(tmp_path / "t").records if r["type"] == "sparkplug"]
        assert [(r["what"], r.get("reason")) for r in notes] == [
            ("births", "connect"),
            ("seq_skipped", None),
            ("births", "rebirth"),
            ("births", "rebirth"),
            ("death", "stop"),
        ]
    finally:
        await adapter.stop()
        await task


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test alone: it is stopped and started again."""
    broker = Mosquitto(workdir=tmp_path / "broker").start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_broker_restart(own_broker: Mosquitto) -> None:
    broker = own_broker
    cfg = sparkplug_config(broker.port, unique("L"))
    sink = Sink()
    adapter, task = await host(cfg, sink)
    try:
        async with run_simulators(cfg, speed=SPEED, seed=5) as sims:
            edge = edge_of(sims)
            await sink.wait_for(lambda: len(sink.of("Process/Temperature")) >= 2, "data")
            broker.stop()
            await eventually(lambda: not adapter.status.connected, DEADLINE_S, "host disconnected")
            # nobody knows the values meanwhile
            await sink.wait_for(lambda: sink.of("Status/State")[-1].quality == Quality.BAD, "BAD")
            assert sink.of("Status/State")[-1].value is None
            broker.start()
            await eventually(lambda: edge.births == 2, DEADLINE_S, "births after the restart")
            n = len(sink.of("Process/Temperature"))
            await sink.wait_for(lambda: len(sink.of("Process/Temperature")) > n + 1, "resumed")
            assert sink.of("Status/State")[-1].quality == Quality.GOOD
            # a new bdSeq per CONNECT (attempts while the broker was away count too)
            node = adapter.sessions.nodes[(edge.group, edge.edge)]
            assert node.bd_seq == edge.bd_seq > 0
    finally:
        await adapter.stop()
        await task
