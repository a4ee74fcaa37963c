"""ModbusAdapter against a real pymodbus server over loopback sockets.

The server (`Plc`) is pymodbus's own ModbusTcpServer with a register image the tests fill through
the reference codec's `encode` (oracles.py), so the bytes on the wire are what a device with that byte order sends. A
small TCP proxy between adapter and server delays responses to play a slow device. Nothing of
pymodbus is mocked. Waiting is always "poll until a condition holds, with a deadline".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from adapters.base import Quality, Reading
from adapters.modbus import ModbusAdapter
from adapters.modbus.planner import ReadRequest
from adapters.registry import create_adapter
from config.sources.modbus import ModbusSource, ModbusTag, RegisterKind
from tests.adapters.oracles import encode
from tests.adapters.shared import RoutedSink, config_with
from tests.services import eventually, free_port

REGISTERS = 200  # each unit serves addresses 0..199 of every table; 200+ is illegal
WRITE_CODES = {  # function code pymodbus's datastore files a write under, per table
    RegisterKind.COIL: 15,
    RegisterKind.DISCRETE_INPUT: 2,
    RegisterKind.HOLDING_REGISTER: 16,
    RegisterKind.INPUT_REGISTER: 4,
}


class Plc:
    """A pymodbus Modbus TCP server on a loopback port; `set()` writes a tag's value."""

    def __init__(self, port: int, *, units: Sequence[int] = (1, 2), framer: str = "tcp") -> None:
        self.port = port
        self.units = units
        self.framer = FramerType.SOCKET if framer == "tcp" else FramerType.RTU
        self.server: ModbusTcpServer | None = None
        self.image: dict[tuple[int, int, int], list[int] | list[bool]] = {}  # replayed on start
        self.trouble: dict[int, str] = {}  # unit -> "busy" (exception 6) or "silent" (no reply)

    def _device(self, unit: int) -> SimDevice:
        bits = [SimData(0, count=REGISTERS, values=False, datatype=SimType.BITS)]
        regs = [SimData(0, count=REGISTERS, values=0, datatype=SimType.REGISTERS)]
        return SimDevice(
            id=unit,
            simdata=(list(bits), list(bits), list(regs), list(regs)),
            action=functools.partial(self._action, unit),
        )

    async def _action(
        self,
        unit: int,
        _fc: int,
        _start: int,
        _address: int,
        _count: int,
        _registers: list[int],
        set_values: object,
    ) -> ExcCodes | None:
        """pymodbus calls this before answering a request: play a busy or a silent device."""
        if set_values is not None:
            return None
        match self.trouble.get(unit):
            case "busy":
                return ExcCodes.DEVICE_BUSY
            case "silent":
                await asyncio.sleep(1.0)  # past every timeout used here; the client is gone
        return None

    async def start(self) -> Plc:
        self.server = ModbusTcpServer(
            [self._device(u) for u in self.units],
            address=("127.0.0.1", self.port),
            framer=self.framer,
        )
        await self.server.serve_forever(background=True)
        for (unit, code, address), values in self.image.items():
            await self.server.async_setValues(unit, code, address, values)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()  # closes the listener and every open connection
            self.server = None

    async def set(self, tag: ModbusTag, value: Any, unit: int = 1) -> None:
        code = WRITE_CODES[tag.table]
        data: list[int] | list[bool] = encode(tag, value)
        if tag.table.is_bit:
            data = [bool(v) for v in data]
        self.image[(unit, code, tag.address)] = data
        if self.server is not None:
            await self.server.async_setValues(unit, code, tag.address, data)


@dataclass
class Proxy:
    """TCP proxy to `upstream`; responses wait `delay_s` (read when they arrive) before going on.

    Order is kept per connection, as on one TCP stream: a late reply still comes before the
    replies to later requests on the same socket, which is how a slow device behaves.
    """

    upstream: int
    port: int = field(default_factory=free_port)
    delay_s: float = 0.0
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> Proxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        """Close the listener and every stream; the handlers then end by themselves."""
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_w.close()
            self.tasks.discard(task)
            return
        self.writers.add(server_w)
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def requests() -> None:
            while data := await client_r.read(4096):
                server_w.write(data)
                await server_w.drain()

        async def responses() -> None:
            while data := await server_r.read(4096):
                queue.put_nowait((time.monotonic() + self.delay_s, data))

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                client_w.write(data)
                await client_w.drain()

        jobs = [asyncio.create_task(j()) for j in (requests, responses, deliver)]
        await asyncio.wait(jobs[:2], return_when=asyncio.FIRST_COMPLETED)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        for w in (client_w, server_w):
            w.close()
            self.writers.discard(w)
        self.tasks.discard(task)


class Collected:
    """The sink: keeps every batch with the time it was handed over."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.delivered: list[dt.datetime] = []

    async def __call__(self, batch: Sequence[Reading]) -> None:
        now = dt.datetime.now(dt.UTC)
        self.readings.extend(batch)
        self.delivered.extend(now for _ in batch)

    def of(self, tag: ModbusTag) -> list[Reading]:
        return [r for r in self.readings if r.address == tag.reading_address]

    def last(self, tag: ModbusTag) -> Reading | None:
        found = self.of(tag)
        return found[-1] if found else None


def source(port: int, tags: list[dict[str, Any]], **options: Any) -> ModbusSource:
    raw = {
        "protocol": "modbus",
        "name": "test-plc",
        "host": "127.0.0.1",
        "port": port,
        "poll_interval_s": 0.1,
        "timeout_s": 0.3,
        "retries": 1,
        "reconnect_delay_s": 0.05,
        "reconnect_delay_max_s": 0.4,
        **options,
        "tags": [{"machine": "m", **t} for t in tags],
    }
    return ModbusSource.model_validate(raw)


@contextlib.asynccontextmanager
async def running(adapter: ModbusAdapter) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(adapter.run())
    try:
        yield task
    finally:
        await asyncio.wait_for(adapter.stop(), timeout=10)
        await asyncio.wait_for(task, timeout=10)


def by_name(src: ModbusSource) -> dict[str, ModbusTag]:
    return {t.name: t for t in src.tags}


# name, tag options, value written (before scale/offset undone), expected reading
VALUE_CASES: list[tuple[str, dict[str, Any], Any, float | str | None]] = [
    ("state", {"address": 0}, 3, 3.0),
    ("neg16", {"address": 1, "type": "int16"}, -1234, -1234.0),
    (
        "count_cdab",
        {"address": 2, "type": "uint32", "byte_order": "CDAB"},
        3_000_000_000,
        3_000_000_000.0,
    ),
    ("temp_cdab", {"address": 4, "type": "float32", "byte_order": "CDAB"}, 21.5, 21.5),
    ("temp_abcd", {"address": 6, "type": "float32", "byte_order": "ABCD"}, -7.25, -7.25),
    ("temp_badc", {"address": 8, "type": "float32", "byte_order": "BADC"}, 0.5, 0.5),
    ("temp_dcba", {"address": 10, "type": "float32", "byte_order": "DCBA"}, 1e6, 1e6),
    ("energy", {"address": 12, "type": "float64", "byte_order": "CDAB"}, 12345.678, 12345.678),
    ("delta", {"address": 16, "type": "int64", "byte_order": "DCBA"}, -(2**40), -(2.0**40)),
    ("big", {"address": 20, "type": "uint64"}, 2**50, 2.0**50),
    ("int32", {"address": 24, "type": "int32", "byte_order": "BADC"}, -70000, -70000.0),
    ("scaled", {"address": 26, "type": "int16", "scale": 0.1, "offset": 5}, -12.3, -12.3),
    ("batch", {"address": 27, "type": "string", "length": 4}, "LOT-42", "LOT-42"),
    ("alarm", {"address": 31, "type": "bool", "bit": 9}, True, 1.0),
    ("ir_speed", {"register": "input_register", "address": 0, "type": "float32"}, 88.0, 88.0),
    ("run", {"register": "coil", "address": 5, "type": "bool"}, True, 1.0),
    ("door", {"register": "discrete_input", "address": 7, "type": "bool"}, True, 1.0),
    ("u2_state", {"address": 0, "unit_id": 2}, 4, 4.0),
    ("u2_temp", {"address": 4, "unit_id": 2, "type": "float32", "byte_order": "CDAB"}, -3.5, -3.5),
]


@pytest.mark.parametrize("framer", ["tcp", "rtu"])
async def test_values_types_orders_scale_and_quality(framer: str) -> None:
    port = free_port()
    plc = await Plc(port, framer=framer).start()
    tags = [{"name": name, **opts} for name, opts, _, _ in VALUE_CASES]
    tags += [
        # unit 1 serves 0..199 only: alone, 300 is an exception response (BAD);
        {"name": "missing", "address": 300},
        # merged with 198, 203 makes the read illegal: the adapter splits it, 198 stays good.
        {"name": "edge", "address": 198, "type": "uint16"},
        {"name": "beyond", "address": 203, "type": "uint16"},
    ]
    src = source(port, tags, framer=framer, devices=[{"unit_id": 2, "poll_interval_s": 0.2}])
    named = by_name(src)
    for name, _, written, _ in VALUE_CASES:
        tag = named[name]
        await plc.set(tag, written, unit=src.unit_of(tag))
    await plc.set(named["edge"], 198)
    sink = Collected()
    adapter = create_adapter(src, sink)
    assert isinstance(adapter, ModbusAdapter)
    assert sorted(adapter.schedule) == [0.1, 0.2]  # one poller per cadence (unit 2 slower)
    try:
        async with running(adapter) as task:
            await eventually(lambda: all(sink.last(t) for t in src.tags), what="every tag read")
            await eventually(
                lambda: sink.last(named["beyond"]).quality == Quality.BAD,  # type: ignore[union-attr]
                what="the split request settles",
            )
            assert not task.done()
    finally:
        await plc.stop()
    for name, _, _, expected in VALUE_CASES:
        reading = sink.last(named[name])
        assert reading is not None and reading.quality == Quality.GOOD, name
        assert reading.source == "test-plc"
        if isinstance(expected, str):
            assert (reading.value, reading.text) == (None, expected), name
        else:
            assert isinstance(reading.value, float), name
            assert reading.value == pytest.approx(expected, rel=1e-6), name
    for name in ("missing", "beyond"):
        bad = sink.last(named[name])
        assert bad is not None and (bad.quality, bad.value) == (Quality.BAD, None), name
    assert sink.last(named["edge"]).value == 198.0  # type: ignore[union-attr]
    assert adapter.status.extra["exception_responses"] >= 2
    assert adapter.status.errors >= 2 and adapter.status.readings == len(sink.readings)
    # one timestamp per request (when it was sent), timezone-aware, the same for its tags
    first_poll = [r for r in sink.readings if r.ts == sink.readings[0].ts]
    assert len(first_poll) > 1 and sink.readings[0].ts.tzinfo is not None


async def test_readings_resume_after_a_server_restart(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="adapters.modbus")
    port = free_port()
    plc = await Plc(port).start()
    src = source(port, [{"name": "count", "address": 2, "type": "uint32", "byte_order": "CDAB"}])
    tag = src.tags[0]
    await plc.set(tag, 1000)
    sink = Collected()
    adapter = ModbusAdapter(src, sink)
    try:
        async with running(adapter) as task:
            await eventually(lambda: sink.last(tag) is not None, what="first reading")
            assert adapter.status.connected
            await plc.stop()
            errors = adapter.status.errors
            await eventually(
                lambda: adapter.status.errors >= errors + 5, what="the adapter notices the outage"
            )
            assert not adapter.status.connected
            await plc.set(tag, 2000)  # the restarted PLC has counted on
            await plc.start()
            await eventually(
                lambda: sink.last(tag).value == 2000.0,
                within=10,  # type: ignore[union-attr]
                what="readings resume after the restart",
            )
            assert not task.done()
            assert adapter.status.connected and adapter.status.reconnects >= 1
        assert task.exception() is None
    finally:
        await plc.stop()
    records = [r for r in caplog.records if r.name.startswith("adapters.modbus")]
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # the connection, once; not once per poll or unit
    assert any(r.levelno == logging.DEBUG and "still failing" in r.getMessage() for r in records)
    assert any(r.levelno == logging.INFO and "recovered" in r.getMessage() for r in records)


@pytest.mark.parametrize("framer", ["tcp", "rtu"])
async def test_slow_device_never_shifts_responses(framer: str) -> None:
    """Replies come later than the timeout for a while, then on time; values never shift.

    Two registers in two requests hold values from disjoint ranges that change every 50 ms. A
    reply taken for a later request would show up as a value of the other register, or as a
    value older than the poll it is stamped with. RTU framing has no transaction id, so only
    closing the socket after a timeout protects it.
    """
    port = free_port()
    plc = await Plc(port, framer=framer).start()
    proxy = await Proxy(upstream=port).start()
    src = source(
        proxy.port,
        [
            {"name": "a", "address": 0, "type": "uint32"},
            {"name": "b", "address": 100, "type": "uint32", "byte_order": "CDAB"},
        ],
        framer=framer,
        max_gap=0,
        poll_interval_s=0.05,
    )
    a, b = src.tags
    history: list[
        tuple[dt.datetime, int]
    ] = []  # (set at, k); a holds 1_000_000 + k, b 2_000_000 + k

    async def change(k: int) -> None:
        await plc.set(a, 1_000_000 + k)
        await plc.set(b, 2_000_000 + k)
        history.append((dt.datetime.now(dt.UTC), k))

    async def keep_changing() -> None:
        k = 0
        while True:
            k += 1
            await change(k)
            await asyncio.sleep(0.05)

    await change(0)
    sink = Collected()
    adapter = ModbusAdapter(src, sink)
    changer = asyncio.create_task(keep_changing())
    try:
        async with running(adapter) as task:
            await eventually(lambda: len(sink.of(a)) >= 3, what="normal readings first")
            proxy.delay_s = 0.45  # past timeout_s=0.3: every reply arrives late
            timeouts = adapter.status.extra["timeouts"]
            await eventually(
                lambda: adapter.status.extra["timeouts"] >= timeouts + 4,
                what="timeouts while the device is slow",
            )
            proxy.delay_s = 0.0
            slow_end = dt.datetime.now(dt.UTC)
            await eventually(
                lambda: sum(r.ts > slow_end for r in sink.of(b)) >= 10,
                what="good readings after the device is fast again",
            )
            assert not task.done()
    finally:
        changer.cancel()
        await asyncio.gather(changer, return_exceptions=True)
        await proxy.stop()
        await plc.stop()

    def k_between(start: dt.datetime, end: dt.datetime) -> set[int]:
        """Values of k the server held at some moment in [start, end]."""
        held = {k for at, k in history if start <= at <= end}
        before = [k for at, k in history if at < start]
        return held | set(before[-1:])

    checked = 0
    for reading, delivered in zip(sink.readings, sink.delivered, strict=True):
        assert reading.quality == Quality.GOOD and reading.value is not None
        base = 1_000_000 if reading.address == a.reading_address else 2_000_000
        k = int(reading.value) - base
        assert 0 <= k < 1_000_000, f"{reading.address} got the other register's value"
        allowed = k_between(reading.ts, delivered)
        assert k in allowed, f"stale reply: k={k} stamped {reading.ts}, held then: {allowed}"
        checked += 1
    assert checked >= 20


async def test_an_answer_is_decoded_while_the_next_request_is_on_the_wire() -> None:
    """Decoding must not add to the round trip: request k+1 is sent before answer k is decoded.

    Three tables make three requests per poll. At the moment an answer is decoded, the
    connection's last send is the next request's (later than the answer's own stamp), except
    for the poll's last answer; the batch still holds the requests' readings in request order.
    """
    port = free_port()
    plc = await Plc(port).start()
    proxy = await Proxy(upstream=port, delay_s=0.02).start()
    tags = [
        {"name": "run", "register": "coil", "address": 0, "type": "bool"},
        {"name": "state", "address": 0},
        {"name": "speed", "register": "input_register", "address": 0},
    ]
    src = source(proxy.port, tags, poll_interval_s=0.5)
    batches: list[list[Reading]] = []

    async def sink(batch: Sequence[Reading]) -> None:
        batches.append(list(batch))

    adapter = ModbusAdapter(src, sink)
    (requests,) = adapter.schedule.values()
    assert len(requests) == 3
    decoded: list[tuple[str, dt.datetime, dt.datetime]] = []  # (address, stamp, last send then)
    decode = adapter._decode

    def recording(request: ReadRequest, data: Any, ts: dt.datetime) -> list[Reading]:
        decoded.append((request.addresses[0], ts, adapter._conn.sent_at))
        return decode(request, data, ts)

    adapter._decode = recording  # type: ignore[method-assign]
    try:
        async with running(adapter):
            await eventually(lambda: len(batches) >= 2, what="two polls")
    finally:
        await proxy.stop()
        await plc.stop()
    first = decoded[:3]
    assert [address for address, _, _ in first] == [r.address for r in batches[0]]
    for _address, stamp, last_send in first[:2]:
        assert last_send > stamp  # the next request went out before this answer was decoded
    _address, stamp, last_send = first[2]
    assert last_send == stamp  # the poll's last answer: nothing left to send
    assert [r.ts for r in batches[0]] == [stamp for _, stamp, _ in first]


async def test_a_failing_sink_and_a_silent_device_do_not_end_the_adapter() -> None:
    """The sink raises for a while, then the device goes silent; stop() still ends run()."""
    port = free_port()
    plc = await Plc(port).start()
    proxy = await Proxy(upstream=port).start()
    src = source(proxy.port, [{"name": "state", "address": 0}])
    (tag,) = src.tags
    await plc.set(tag, 1)
    sink = Collected()
    refusals = 3

    async def flaky(batch: Sequence[Reading]) -> None:
        nonlocal refusals
        if refusals > 0:
            refusals -= 1
            raise RuntimeError("collector queue closed")
        await sink(batch)

    adapter = ModbusAdapter(src, flaky)
    try:
        async with running(adapter) as task:
            await eventually(lambda: len(sink.of(tag)) >= 2, what="readings after sink errors")
            assert adapter.status.errors >= 3
            proxy.delay_s = 3600.0  # the device stops answering
            timeouts = adapter.status.extra["timeouts"]
            await eventually(lambda: adapter.status.extra["timeouts"] > timeouts, what="a timeout")
            assert not task.done()
        assert task.exception() is None  # stop() ended run() though a request was pending
    finally:
        await proxy.stop()
        await plc.stop()


@pytest.mark.parametrize("trouble", ["busy", "silent"])
async def test_one_failing_unit_behind_a_gateway_does_not_blank_the_other(
    trouble: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Unit 2 answers "device busy" (BAD readings) or not at all (no readings); unit 1 goes on."""
    caplog.set_level(logging.INFO, logger="adapters.modbus")
    port = free_port()
    plc = await Plc(port).start()
    src = source(
        port,
        [
            {"name": "u1_state", "address": 0},
            {"name": "u2_state", "address": 0, "unit_id": 2},
            {"name": "u2_temp", "address": 4, "unit_id": 2, "type": "float32"},
        ],
    )
    u1, u2_state, u2_temp = src.tags
    await plc.set(u1, 1)
    await plc.set(u2_state, 2, unit=2)
    await plc.set(u2_temp, 30.5, unit=2)
    plc.trouble[2] = trouble
    sink = Collected()
    adapter = ModbusAdapter(src, sink)
    try:
        async with running(adapter) as task:
            await eventually(lambda: len(sink.of(u1)) >= 3, what="unit 1 keeps being read")
            if trouble == "busy":
                assert adapter.status.extra["exception_responses"] >= 2
                assert {(r.quality, r.value) for r in sink.of(u2_state) + sink.of(u2_temp)} == {
                    (Quality.BAD, None)
                }
            else:
                assert adapter.status.extra["timeouts"] >= 2 and not sink.of(u2_state)
            plc.trouble.clear()
            await eventually(
                lambda: any(r.quality == Quality.GOOD for r in sink.of(u2_temp)),
                what="unit 2 recovers",
            )
            assert not task.done()
    finally:
        await plc.stop()
    assert {(r.quality, r.value) for r in sink.of(u1)} == {(Quality.GOOD, 1.0)}
    assert sink.last(u2_temp).value == 30.5  # type: ignore[union-attr]
    messages = [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("adapters.modbus")
    ]
    assert len([m for level, m in messages if level == logging.WARNING]) == 1, messages
    assert not [m for level, m in messages if level > logging.WARNING], messages
    assert any(level == logging.INFO and "recovered" in m for level, m in messages)


async def test_tags_on_one_register_each_get_every_reading() -> None:
    """Issue 14: m1's state register is also m2's `upstream_state` measurement, and one uint32
    counter is both machines' total; the same register with a scale is another value. Read from
    a real server and mapped by the real router, each tag gets every reading."""
    port = free_port()
    plc = await Plc(port).start()
    raw: dict[str, Any] = {"protocol": "modbus", "name": "plc", "host": "127.0.0.1"}
    raw.update(port=port, poll_interval_s=0.1, timeout_s=0.3)
    raw["tags"] = [
        {"machine": "m1", "name": "state", "signal": "state", "address": 0},
        {"machine": "m2", "name": "upstream_state", "address": 0},
        {"machine": "m1", "name": "total", "signal": "total_count", "address": 2, "type": "uint32"},
        {"machine": "m2", "name": "total", "signal": "total_count", "address": 2, "type": "uint32"},
        {"machine": "m2", "name": "upstream_x10", "address": 0, "scale": 10},
    ]
    cfg = config_with(raw)
    (src,) = cfg.sources
    assert isinstance(src, ModbusSource)
    tag = {t.key: t for t in src.tags}
    sink = RoutedSink(cfg)
    adapter = ModbusAdapter(src, sink)
    ((request,),) = adapter.schedule.values()
    assert len(request.tags) == 3  # the shared register and counter are read once per poll
    try:
        async with running(adapter):
            for state, total in [(1, 70_000), (2, 70_001), (1, 70_005)]:
                await plc.set(tag["m1.state"], state)
                await plc.set(tag["m1.total"], total)
                seen = [float(state)], [float(total)]
                await eventually(
                    lambda seen=seen: (
                        (
                            sink.values("m2.upstream_state")[-1:],
                            sink.values("m2.total")[-1:],
                        )
                        == seen
                    ),
                    what=f"state {state} and total {total}",
                )
    finally:
        await plc.stop()
    address = tag["m1.state"].reading_address
    sink.assert_each_tag_gets_every_reading("m1.state", "m2.upstream_state", address=address)
    counter = tag["m1.total"].reading_address
    sink.assert_each_tag_gets_every_reading("m1.total", "m2.total", address=counter)
    assert {1.0, 2.0} <= set(sink.values("m2.upstream_state"))
    assert {70_000.0, 70_001.0, 70_005.0} <= set(sink.values("m1.total"))
    scaled = tag["m2.upstream_x10"].reading_address
    assert scaled != address
    assert [v / 10 for v in sink.values("m2.upstream_x10")[-1:]] == [1.0]  # type: ignore[operator]
