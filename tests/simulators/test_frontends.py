"""Each front end read with a plain protocol client finds exactly what the truth file says."""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from asyncua import Client, ua
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import AsyncModbusTcpClient

from config import ShopfloorConfig
from simulators import Simulators, run_simulators
from simulators.truth import Truth, load, snapshots, value_at
from tests.services import Mosquitto
from tests.simulators.helpers import demo_config, eventually, port_of, utc

SPEED = 120.0
WRAP_START = 65536 - 200  # the filler's 16-bit counters wrap about 100 simulated seconds in
DT = AsyncModbusTcpClient.DATATYPE


@dataclass
class Subscriber:
    """A plain paho subscriber collecting every message of the packer's topics."""

    port: int
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{id(self)}")
        self.client.on_connect = lambda c, *_: c.subscribe("demo/line1/packer/#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def on(self, topic: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Line:
    sims: Simulators
    cfg: ShopfloorConfig
    truth_path: Path
    subscriber: Subscriber

    def truth(self) -> Truth:
        return load(self.truth_path)


@pytest.fixture(scope="module")
async def line(
    mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Line]:
    cfg = demo_config(mosquitto.port, filler={"counter_start": WRAP_START})
    subscriber = Subscriber(mosquitto.port)
    await eventually(subscriber.subscribed.is_set, "subscribed to the broker")
    truth_path = tmp_path_factory.mktemp("truth") / "truth.jsonl"
    async with run_simulators(cfg, speed=SPEED, seed=5, truth_path=truth_path) as sims:
        print(f"\nsimulators started in {sims.start_seconds:.2f} s")
        yield Line(sims, cfg, truth_path, subscriber)
    subscriber.close()


def opcua_url(cfg: ShopfloorConfig) -> str:
    return f"opc.tcp://127.0.0.1:{port_of(cfg, 'filler-plc')}/shopfloor/sim"


def f32(value: float) -> float:
    return struct.unpack(">f", struct.pack(">f", value))[0]


# -- OPC UA -------------------------------------------------------------------------------

TRUTH_KEY = {
    "state": "state",
    "stop_reason": "reason",
    "good_count": "good_counter",
    "reject_count": "reject_counter",
    "temperature": "temperature",
    "speed": "speed",
}


async def test_opcua_address_space_is_browsable_per_machine(line: Line) -> None:
    async with Client(opcua_url(line.cfg)) as client:
        folder = await client.nodes.objects.get_child(["2:filler"])
        names = {(await n.read_browse_name()).Name for n in await folder.get_children()}
    assert names == {"state", "stop_reason", "good_count", "reject_count", "temperature", "speed"}


async def test_opcua_values_and_source_timestamps_are_the_truth(line: Line) -> None:
    async with Client(opcua_url(line.cfg)) as client:
        await eventually(lambda: line.sims.events > 0 and line.truth().records, "some truth")
        read = {}
        for name in TRUTH_KEY:
            read[name] = await client.get_node(f"ns=2;s=filler.{name}").read_data_value()
    truth = line.truth()
    for name, dv in read.items():
        ts = utc(dv.SourceTimestamp)
        expected = value_at(truth, "filler", TRUTH_KEY[name], ts)
        if name.endswith("_count"):
            expected %= 65536
        assert dv.Value.Value == expected, name
        assert ts >= line.sims.clock.epoch


async def test_opcua_16_bit_counter_wraps_as_the_truth_says(line: Line) -> None:
    """A subscriber sees the wrapped counter; each notification equals truth mod 2^16."""
    seen: list[tuple[int, Any]] = []

    class Handler:
        def datachange_notification(self, node: Any, val: int, data: Any) -> None:
            seen.append((val, utc(data.monitored_item.Value.SourceTimestamp)))

    async with Client(opcua_url(line.cfg)) as client:
        sub = await client.create_subscription(50, Handler())
        await sub.subscribe_data_change(client.get_node("ns=2;s=filler.good_count"), queuesize=1000)

        def wrapped() -> bool:
            counters = [s["good_counter"] for _, s in snapshots(line.truth(), "filler")]
            return bool(counters) and counters[-1] >= 65536 + 20 and len(seen) > 5

        await eventually(wrapped, "the filler's good counter passes 65536")
        await sub.delete()
    truth = line.truth()
    for value, ts in seen:
        assert value == value_at(truth, "filler", "good_counter", ts) % 65536
    assert any(value < WRAP_START for value, _ in seen)  # a value after the wrap arrived


# -- Modbus -------------------------------------------------------------------------------


async def read_block(client: AsyncModbusTcpClient, unit: int) -> list[int]:
    """All of a unit's holding registers in one request (capper: 0-11, labeler: 0-9)."""
    reply = await client.read_holding_registers(0, count=12 if unit == 1 else 10, device_id=unit)
    assert not reply.isError(), reply
    return reply.registers


async def test_modbus_reads_are_truth_snapshots_in_both_word_orders(line: Line) -> None:
    """One block read per unit is one instant of the truth: state, reason, counters, floats."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port_of(line.cfg, "capper-labeler-plc"))
    await client.connect()
    try:
        reads = []
        beyond = await client.read_holding_registers(0, count=11, device_id=2)
        assert beyond.isError()  # past the labeler's last register, as a real PLC answers
        for _ in range(5):
            reads.append(("capper", await read_block(client, 1), "little"))  # CDAB
            reads.append(("labeler", await read_block(client, 2), "big"))  # ABCD
            coil = await client.read_coils(0, count=1, device_id=2)
            assert not coil.isError() and isinstance(coil.bits[0], bool)
            await eventually(lambda n=line.sims.events: line.sims.events > n, "the model moves")
    finally:
        client.close()
    capper_pressure = await _read_float(line, unit=1, address=10, order="little")
    truth = line.truth()
    for machine, regs, order in reads:
        picture = {
            "state": regs[0],
            "reason": regs[1],
            "good_counter": client.convert_from_registers(regs[2:4], DT.UINT32, word_order=order),
            "reject_counter": client.convert_from_registers(regs[4:6], DT.UINT32, word_order=order),
            "temperature": client.convert_from_registers(regs[8:10], DT.FLOAT32, word_order=order),
        }
        candidates = [
            {k: (f32(s[k]) if k == "temperature" else s[k]) for k in picture}
            for _, s in snapshots(truth, machine)
            if "state" in s and "temperature" in s
        ]
        assert picture in candidates, (machine, picture)
    assert capper_pressure in {
        f32(s["pressure"]) for _, s in snapshots(truth, "capper") if "pressure" in s
    }


async def _read_float(line: Line, *, unit: int, address: int, order: str) -> float:
    client = AsyncModbusTcpClient("127.0.0.1", port=port_of(line.cfg, "capper-labeler-plc"))
    await client.connect()
    try:
        reply = await client.read_holding_registers(address, count=2, device_id=unit)
        return client.convert_from_registers(reply.registers, DT.FLOAT32, word_order=order)
    finally:
        client.close()


async def test_modbus_refuses_writes_and_unknown_units(line: Line) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=port_of(line.cfg, "capper-labeler-plc"))
    await client.connect()
    try:
        reply = await client.write_register(0, 7, device_id=1)
        assert reply.isError() and reply.exception_code == 1  # illegal function
        reply = await client.read_holding_registers(0, count=2, device_id=9)
        assert reply.isError() and reply.exception_code == 0x0B  # gateway: no such device
    finally:
        client.close()


# -- MQTT ---------------------------------------------------------------------------------


async def test_mqtt_messages_are_the_truth(line: Line) -> None:
    sub = line.subscriber
    await eventually(lambda: len(sub.on("demo/line1/packer/part")) >= 3, "three packed cases")
    await eventually(lambda: sub.on("demo/line1/packer/status"), "a status message")
    await eventually(lambda: sub.on("demo/line1/packer/process"), "a process message")
    truth = line.truth()
    counts = {
        (r["ts"], r["good"], r["reject"])
        for r in truth.records
        if r["type"] == "count" and r["machine"] == "packer"
    }
    for part in sub.on("demo/line1/packer/part"):
        assert set(part) == {"good", "reject", "ts"}
        assert (part["ts"], part["good"], part["reject"]) in counts
    states = {
        (r["ts"], r["state"], r["reason"])
        for r in truth.records
        if r["type"] == "state" and r["machine"] == "packer"
    }
    for status in sub.on("demo/line1/packer/status"):
        assert (status["ts"], status["state"], status["reason"]) in states
    temps = {
        (r["ts"], r["temperature"])
        for r in truth.records
        if r["type"] == "process" and r["machine"] == "packer"
    }
    for proc in sub.on("demo/line1/packer/process"):
        assert (proc["ts"], proc["temperature"]) in temps


def test_the_truth_header_describes_the_run(line: Line) -> None:
    head = line.truth().header
    assert head["seed"] == 5 and head["speed"] == SPEED
    assert head["machines"]["filler"]["counter_start"] == WRAP_START
    assert head["tags"]["filler.good_count"]["modulus"] == 65536
    assert head["tags"]["capper.good_count"]["modulus"] == 2**32
    assert head["tags"]["packer.good_count"]["counter"] == "delta"
    _ = ua  # the asyncua client is the only OPC UA code this module uses
