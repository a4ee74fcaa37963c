"""The Sparkplug host application through a real Mosquitto, against an edge node driven by hand
(paho plus the simulator's own encoder): births, aliases-only data, a seq gap answered by a
Rebirth, deaths, our STATE, and a failing sink."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.base import Malformed, Quality, Reading
from adapters.registry import create_adapter
from adapters.sparkplug import SparkplugAdapter
from config.sources.sparkplug import SparkplugSource
from simulators.frontends import sparkplug_wire as wire
from simulators.frontends.sparkplug_wire import WireMetric, encode_payload, true_booleans
from tests.adapters.shared import config_with
from tests.services import Mosquitto, eventually, unique

DEADLINE_S = 15.0
T0 = dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)


def ms(s: float) -> int:
    return int(T0.timestamp() * 1000) + round(s * 1000)


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


class Edge:
    """An edge node `group/E` with device `press`, published by hand; records NCMDs."""

    def __init__(self, port: int, group: str) -> None:
        self.group = group
        self.rebirths: list[str] = []
        self.seq = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("edge"))
        self.client.on_message = lambda _c, _u, msg: self.rebirths.extend(
            true_booleans(msg.payload)
        )
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"spBv1.0/{group}/NCMD/E", qos=1)
        self.client.loop_start()

    async def send(self, kind: str, metrics: list[WireMetric], s: float, seq: bool = True) -> None:
        device = "" if kind.startswith("N") else "/press"
        number = None
        if seq:
            number, self.seq = self.seq, (self.seq + 1) % 256
        payload = encode_payload(ms(s), number, metrics)
        info = self.client.publish(f"spBv1.0/{self.group}/{kind}/E{device}", payload, qos=0)
        await asyncio.to_thread(info.wait_for_publish, 5)

    async def births(self, s: float = 0, bd: int = 0) -> None:
        self.seq = 0
        await self.send(
            "NBIRTH",
            [
                WireMetric("bdSeq", None, ms(s), wire.INT64, bd),
                WireMetric("Node Control/Rebirth", None, ms(s), wire.BOOLEAN, False),
                WireMetric("uptime", 1, ms(s), wire.UINT64, 2**40),
            ],
            s,
        )
        await self.send(
            "DBIRTH",
            [
                WireMetric("state", 10, ms(s), wire.INT16, 1),
                WireMetric("temp", 11, ms(s), wire.FLOAT, 20.5),
                WireMetric("count", 12, ms(s), wire.UINT32, 7),
                WireMetric("mode", 13, ms(s), wire.STRING, "auto"),
                WireMetric("ok", 14, ms(s), wire.BOOLEAN, True),
                WireMetric("offset", 15, ms(s), wire.INT32, -3),
            ],
            s,
        )

    async def data(self, s: float, state: int) -> None:
        m = WireMetric(None, 10, ms(s), None, state, value_type=wire.INT16)
        await self.send("DDATA", [m], s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Sink:
    def __init__(self, fail: Callable[[], bool] = lambda: False) -> None:
        self.readings: list[Reading] = []
        self.failures = 0
        self._fail = fail

    async def __call__(self, batch: Sequence[Reading]) -> None:
        if self._fail():
            self.failures += 1
            raise RuntimeError("database is away")
        self.readings.extend(batch)

    def of(self, metric: str) -> list[tuple[dt.datetime, float | None, str | None, int]]:
        return [
            (r.ts, r.value, r.text, r.quality)
            for r in self.readings
            if r.address.endswith(f"#{metric}")
        ]

    async def wait_for(self, check: Callable[[], bool], what: str) -> None:
        await eventually(check, DEADLINE_S, lambda: f"{what}; got {self.readings}")


def source(port: int, group: str, **options: Any) -> SparkplugSource:
    tags = [
        {
            "machine": "m1",
            "name": "state",
            "signal": "state",
            "metric": "state",
            "device": "press",
        },
        {"machine": "m1", "name": "temp", "metric": "temp", "device": "press"},
        {"machine": "m1", "name": "count", "metric": "count", "device": "press"},
        {"machine": "m1", "name": "mode", "metric": "mode", "device": "press"},
        {"machine": "m1", "name": "ok", "metric": "ok", "device": "press"},
        {"machine": "m1", "name": "offset", "metric": "offset", "device": "press"},
        {"machine": "m1", "name": "uptime", "metric": "uptime", "edge_node": "+"},
    ]
    data = {
        "protocol": "sparkplug",
        "name": "spb",
        "host": "127.0.0.1",
        "port": port,
        "client_id": unique("host-"),
        "host_id": unique("h"),
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1.0,
        "rebirth_wait_s": 0.2,
        "reorder_timeout_s": 0.2,
        "tags": [{"group": group, "edge_node": "E", **t} for t in tags],
        **options,
    }
    cfg = config_with(data)
    (src,) = cfg.sources
    assert isinstance(src, SparkplugSource)
    return src


@pytest.fixture
def group() -> str:
    return unique("G")


@pytest.fixture
async def edge(mosquitto: Mosquitto, group: str) -> AsyncIterator[Edge]:
    e = Edge(mosquitto.port, group)
    yield e
    e.close()


@contextlib.asynccontextmanager
async def running(adapter: SparkplugAdapter) -> AsyncIterator[None]:
    """The adapter running and connected (subscribed) for the block; stopped after it."""
    task = asyncio.create_task(adapter.run())
    try:
        await eventually(lambda: adapter.status.connected, DEADLINE_S, "connected")
        yield
    finally:
        await adapter.stop()
        await task


async def test_births_and_aliases_only_data_by_type(
    mosquitto: Mosquitto, edge: Edge, group: str
) -> None:
    sink = Sink()
    adapter = create_adapter(source(mosquitto.port, group), sink)
    assert isinstance(adapter, SparkplugAdapter)
    async with running(adapter):
        await edge.births()
        await edge.data(1, -2)
        await sink.wait_for(lambda: len(sink.of("state")) == 2, "birth and data of state")
        good = Quality.GOOD
        assert sink.of("state") == [(at(0), 1.0, None, good), (at(1), -2.0, None, good)]
        assert sink.of("temp") == [(at(0), 20.5, None, good)]
        assert sink.of("count") == [(at(0), 7.0, None, good)]
        assert sink.of("mode") == [(at(0), None, "auto", good)]
        assert sink.of("ok") == [(at(0), 1.0, None, good)]
        assert sink.of("offset") == [(at(0), -3.0, None, good)]
        assert sink.of("uptime") == [(at(0), float(2**40), None, good)]
        assert {r.address for r in sink.readings if r.address.endswith("uptime")} == {
            f"{group}/+#uptime"
        }
        assert edge.rebirths == []
        assert adapter.status.extra["seq_gaps"] == 0


async def test_seq_gap_asks_rebirth_and_values_resume(
    mosquitto: Mosquitto, edge: Edge, group: str
) -> None:
    sink = Sink()
    adapter = SparkplugAdapter(source(mosquitto.port, group), sink)
    async with running(adapter):
        await edge.births()
        edge.seq += 1  # a message lost
        await edge.data(1, 2)
        await eventually(
            lambda: edge.rebirths == ["Node Control/Rebirth"], DEADLINE_S, "rebirth asked"
        )
        assert adapter.status.extra["seq_gaps"] == 1
        assert adapter.status.extra["rebirths_sent"] == 1
        await edge.births(s=2)
        await edge.data(3, 5)
        await sink.wait_for(lambda: len(sink.of("state")) == 4, "state after the rebirth")
        assert [v for _, v, _, _ in sink.of("state")] == [1.0, 2.0, 1.0, 5.0]
        assert adapter.status.extra["seq_gaps"] == 1


async def test_a_late_message_within_the_reorder_timeout_fills_the_gap(
    mosquitto: Mosquitto, edge: Edge, group: str
) -> None:
    sink = Sink()
    adapter = SparkplugAdapter(source(mosquitto.port, group, reorder_timeout_s=60), sink)
    async with running(adapter):
        await edge.births()
        late = edge.seq
        edge.seq += 1
        await edge.data(1, 2)  # a gap: `late` is awaited
        await eventually(lambda: adapter.sessions.next_due() is not None, DEADLINE_S, "a gap")
        edge.seq = late
        await edge.data(2, 3)  # it comes
        edge.seq = late + 2
        await edge.data(3, 4)
        await sink.wait_for(lambda: len(sink.of("state")) == 4, "every value")
        assert [v for _, v, _, _ in sink.of("state")] == [1.0, 2.0, 3.0, 4.0]
        assert adapter.sessions.next_due() is None  # nothing awaited any more
        assert adapter.status.extra["seq_gaps"] == 1
        assert adapter.status.extra["reordered"] == 1
        assert adapter.status.extra["rebirths_sent"] == 0
        assert edge.rebirths == []


async def test_data_before_birth_asks_rebirth(mosquitto: Mosquitto, edge: Edge, group: str) -> None:
    """The host started after the node's birth (a collector restart): it asks, the node answers."""
    sink = Sink()
    adapter = SparkplugAdapter(source(mosquitto.port, group), sink)
    edge.seq = 40
    async with running(adapter):
        await edge.data(1, 2)
        await eventually(
            lambda: edge.rebirths == ["Node Control/Rebirth"], DEADLINE_S, "rebirth asked"
        )
        assert sink.of("state") == []
        assert adapter.status.extra["data_before_birth"] == 1
        await edge.births(s=2)
        await sink.wait_for(
            lambda: sink.of("state") == [(at(2), 1.0, None, Quality.GOOD)], "the rebirth"
        )


async def test_ndeath_marks_every_metric_bad_and_a_stale_one_is_ignored(
    mosquitto: Mosquitto, edge: Edge, group: str
) -> None:
    sink = Sink()
    adapter = SparkplugAdapter(source(mosquitto.port, group), sink)
    async with running(adapter):
        await edge.births(bd=3)
        death = [WireMetric("bdSeq", None, None, wire.INT64, 2)]
        await edge.send("NDEATH", death, 5, seq=False)  # an older session's will
        await eventually(
            lambda: adapter.status.extra["stale_ndeath_ignored"] == 1, DEADLINE_S, "ignored"
        )
        await edge.send("NDEATH", [WireMetric("bdSeq", None, None, wire.INT64, 3)], 5, seq=False)
        await sink.wait_for(lambda: len(sink.of("state")) == 2, "the death of state")
        for metric in ("state", "temp", "count", "mode", "ok", "offset", "uptime"):
            (_, last) = sink.of(metric)
            assert last[1:] == (None, None, Quality.BAD), metric
            assert last[0] > at(5)  # our receive time: the will's own time means nothing


async def test_primary_host_state_birth_and_death(mosquitto: Mosquitto, group: str) -> None:
    src = source(mosquitto.port, group, primary_host=True)
    seen: list[dict[str, Any]] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("watch"))
    watcher.on_message = lambda _c, _u, msg: seen.append(json.loads(msg.payload))
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe(f"spBv1.0/STATE/{src.host_id}", qos=1)
    watcher.loop_start()
    adapter = SparkplugAdapter(src, Sink())
    async with running(adapter):
        await eventually(
            lambda: [s["online"] for s in seen] == [True], DEADLINE_S, lambda: f"birth: {seen}"
        )
    await eventually(lambda: len(seen) == 2, DEADLINE_S, lambda: f"death: {seen}")
    birth, death = seen
    assert death["online"] is False and death["timestamp"] >= birth["timestamp"]
    late = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("late"))
    retained: list[dict[str, Any]] = []
    late.on_message = lambda _c, _u, msg: retained.append(json.loads(msg.payload))
    late.connect("127.0.0.1", mosquitto.port)
    late.subscribe(f"spBv1.0/STATE/{src.host_id}", qos=1)
    late.loop_start()
    try:
        await eventually(lambda: retained == [death], DEADLINE_S, lambda: f"retained: {retained}")
    finally:
        for c in (watcher, late):
            c.disconnect()
            c.loop_stop()


async def test_failed_sink_keeps_the_readings(mosquitto: Mosquitto, edge: Edge, group: str) -> None:
    away = True
    sink = Sink(fail=lambda: away)
    adapter = SparkplugAdapter(source(mosquitto.port, group), sink)
    async with running(adapter):
        await edge.births()
        await edge.data(1, 2)
        await eventually(lambda: sink.failures >= 2, DEADLINE_S, "a retried failure")
        away = False
        await sink.wait_for(lambda: len(sink.of("state")) == 2, "kept readings")
        assert [v for _, v, _, _ in sink.of("state")] == [1.0, 2.0]
        assert edge.rebirths == []  # the session saw each message once: no gap


async def test_a_payload_that_is_not_sparkplug_is_quarantined(
    mosquitto: Mosquitto, edge: Edge, group: str
) -> None:
    quarantined: list[Malformed] = []

    async def malformed(batch: Sequence[Malformed]) -> None:
        quarantined.extend(batch)

    sink = Sink()
    adapter = SparkplugAdapter(source(mosquitto.port, group), sink, malformed=malformed)
    async with running(adapter):
        await edge.births()
        topic = f"spBv1.0/{group}/DDATA/E/press"
        info = edge.client.publish(topic, b"\xff\xff\xff", qos=0)
        await asyncio.to_thread(info.wait_for_publish, 5)
        await edge.data(1, 2)  # the next seq: the broken message took none
        await sink.wait_for(lambda: len(sink.of("state")) == 2, "data after the broken one")
        assert [(m.address, m.payload) for m in quarantined] == [(topic, b"\xff\xff\xff")]
        assert "not a Sparkplug B payload" in quarantined[0].reason
        assert adapter.status.malformed == 1
