"""What a server restart writes to the log at the default verbosity, per protocol.

The logging is `shopfloor`'s own at its default (`setup_logging(0)`: its handler and levels),
writing to a buffer. Each test stops its server while the adapter runs, waits until the adapter
has retried a few times, starts the server again and waits for readings; then the whole log of
the run must be two lines of the adapter's: one WARNING that names why the source went away, one
INFO that it is back. No line per retry, no library's line, no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.modbus import ModbusAdapter
from adapters.mqtt import MqttAdapter
from adapters.opcua import OpcUaAdapter
from collector.logs import CHATTY, OWN, is_own, log_handler, set_levels
from tests.adapters import test_modbus_adapter as modbus
from tests.adapters import test_mqtt_adapter as mqtt
from tests.adapters import test_opcua_adapter as opcua
from tests.services import Mosquitto, Publisher, eventually, free_port, unique

RETRIES = 3  # failed attempts while the server is away, before it comes back


@contextlib.contextmanager
def shopfloor_logging(verbosity: int) -> Iterator[io.StringIO]:
    """The log as `shopfloor -v…` writes it, in a buffer; the loggers' levels restored after
    (pytest's own handlers stay: they write nowhere the buffer sees)."""
    root = logging.getLogger()
    touched = [root, *(logging.getLogger(name) for name in (*OWN, *CHATTY))]
    saved = [logger.level for logger in touched]
    out = io.StringIO()
    handler = log_handler(verbosity, out)
    root.addHandler(handler)
    set_levels(verbosity)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for logger, level in zip(touched, saved, strict=True):
            logger.setLevel(level)


@pytest.fixture
def default_log() -> Iterator[io.StringIO]:
    with shopfloor_logging(0) as out:
        yield out


def parsed(text: str) -> list[dict[str, str]]:
    """Each logfmt line's fields (a quoted value without its quotes)."""
    pairs = (re.findall(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', line) for line in text.splitlines())
    return [{key: quoted or bare for key, quoted, bare in line} for line in pairs]


DEBUG, INFO, WARNING, ERROR = "debug", "info", "warning", "error"


@pytest.mark.parametrize(
    ("verbosity", "own", "libraries"),
    [
        (0, [INFO, WARNING, ERROR], []),
        (1, [DEBUG, INFO, WARNING, ERROR], [WARNING, ERROR]),
        (2, [DEBUG, INFO, WARNING, ERROR], [DEBUG, INFO, WARNING, ERROR]),
    ],
)
def test_the_libraries_lines_come_below_ours(
    verbosity: int, own: list[str], libraries: list[str]
) -> None:
    """asyncua and pymodbus have their levels set; asyncio, or a library nobody listed, is held
    back by the handler alone."""
    loggers = ["adapters.opcua.adapter", "shopfloor.simulate", "asyncua.client.ua_session"]
    loggers += ["pymodbus.logging", "asyncio", "py.warnings"]
    with shopfloor_logging(verbosity) as out:
        for name in loggers:
            for level in (DEBUG, INFO, WARNING, ERROR):
                logging.getLogger(name).log(getattr(logging, level.upper()), "x")
    shown = [(f["logger"], f["level"]) for f in parsed(out.getvalue())]
    assert shown == [(name, level) for name in loggers[:2] for level in own] + [
        (name, level) for name in loggers[2:] for level in libraries
    ]


def test_every_package_of_shopfloor_logs_as_its_own() -> None:
    """A package missing from OWN would be taken for a library: silent by default."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.removesuffix("*") for p in packages} <= OWN


def gone_and_back(out: io.StringIO, source: str, what: str) -> tuple[str, str]:
    """The reason of the one WARNING and the detail of the one INFO, the run's only lines."""
    text = out.getvalue()
    assert "Traceback" not in text, text
    fields = parsed(text)
    assert [f["logger"] for f in fields if not is_own(f["logger"])] == [], text
    assert [f["level"] for f in fields] == ["warning", "info"], text
    gone, back = (f["msg"] for f in fields)
    went = re.fullmatch(rf"{source}: {what} failing: (.+) \(will keep trying; .*\)", gone)
    assert went is not None, gone
    came = re.fullmatch(rf"{source}: {what} recovered: (.+)", back)
    assert came is not None, back
    return went[1], came[1]


async def test_opcua_server_restart(default_log: io.StringIO) -> None:
    plc = await opcua.PlcServer(free_port()).start()
    try:
        sink = opcua.Collector()
        source = opcua.make_source(plc.endpoint, tags=opcua.TAGS[:2])
        run = opcua.Running(OpcUaAdapter(source, sink))
        await sink.wait_for(lambda: len(sink.readings) >= 2, "initial values")
        status = run.adapter.status

        await plc.stop()
        await eventually(lambda: status.errors >= RETRIES, what=lambda: f"retries: {status}")
        before = len(sink.readings)
        await plc.start()
        await sink.wait_for(lambda: len(sink.readings) > before, "readings after the restart")
        await run.close()
    finally:
        await plc.stop()
    reason, detail = gone_and_back(default_log, "filler-plc", "session")
    # the server says it shuts down, or the adapter finds the socket or the client closed first
    lost = ("subscription status Bad", "connection lost: ", "client state ")
    assert reason.startswith(lost), reason
    assert detail == f"connected to {plc.endpoint} (2 nodes, subscription)"


@pytest.mark.parametrize("when", ["between polls", "mid-request"])
async def test_modbus_server_restart(default_log: io.StringIO, when: str) -> None:
    """Mid-request: a slow device (0.2 s behind a proxy, no retry) goes away with a request
    outstanding, which is the connection's failure too, not its unit's."""
    plc = await modbus.Plc(free_port()).start()
    proxy = await modbus.Proxy(upstream=plc.port, delay_s=0.2).start()
    server = plc if when == "between polls" else proxy
    port = plc.port if server is plc else proxy.port
    try:
        src = modbus.source(port, [{"name": "count", "address": 2, "type": "uint32"}], retries=0)
        tag = src.tags[0]
        await plc.set(tag, 1000)
        sink = modbus.Collected()
        adapter = ModbusAdapter(src, sink)
        async with modbus.running(adapter):
            await eventually(lambda: sink.last(tag) is not None, what="a first reading")
            if server is proxy:  # a request is outstanding now
                await eventually(lambda: adapter._conn._lock.locked(), what="a request")
            await server.stop()
            errors = adapter.status.errors
            await eventually(
                lambda: adapter.status.errors >= errors + RETRIES,
                what=lambda: f"retries: {adapter.status}",
            )
            await plc.set(tag, 2000)  # the restarted PLC has counted on
            await server.start()
            await eventually(
                lambda: sink.last(tag).value == 2000.0,  # type: ignore[union-attr]
                what="readings after the restart",
            )
    finally:
        await proxy.stop()
        await plc.stop()
    reason, detail = gone_and_back(default_log, "test-plc", "connection")
    closed, refused = (
        f"127.0.0.1:{port} closed the connection",
        f"cannot connect to 127.0.0.1:{port}",
    )
    # between polls the next connect is refused, or a poll finds the socket closed; mid-request
    # the outstanding request finds it closed
    assert reason in ((closed, refused) if server is plc else (closed,)), reason
    assert detail == f"127.0.0.1:{port} answers"


async def test_mqtt_broker_restart(tmp_path: Path, default_log: io.StringIO) -> None:
    broker = Mosquitto(workdir=tmp_path / "broker").start()
    try:
        root = unique("t/outage")
        sink = mqtt.Collector()
        run = mqtt.Running(MqttAdapter(mqtt.make_source(broker.port, root), sink))
        await run.wait_connected()
        status = run.adapter.status

        await asyncio.to_thread(broker.stop)
        await eventually(lambda: status.errors >= RETRIES, what=lambda: f"retries: {status}")
        await asyncio.to_thread(broker.start)
        pub = Publisher(broker.port)
        try:
            await eventually(
                lambda: any(r.value == 2.0 for r in sink.readings),
                what=lambda: f"readings after the restart: {status}",
                each=lambda: pub.publish(f"{root}/packer/temp", "2"),
                interval=0.2,
            )
        finally:
            pub.close()
        await run.close()
    finally:
        broker.stop()
    reason, detail = gone_and_back(default_log, "gw", "connection")
    assert reason.startswith("connection lost: "), reason  # paho's reason follows
    assert detail == f"connected to 127.0.0.1:{broker.port} (session present: False)"
