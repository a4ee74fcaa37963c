"""Load generators and bare protocol clients for bench.e2e, each run as its own process.

    .venv/bin/python -m bench.e2e_load ROLE [options]

Roles: `mqtt-pub` (paho publisher of multi-value JSON at QoS 1), `mqtt-bare` (plain paho
subscriber parsing the same JSON), `modbus-server` (plain pymodbus server with many registers),
`modbus-bare` (plain pymodbus client reading the same requests in a loop), `opcua-server`
(asyncua server whose variables change fast), `opcua-bare` (plain asyncua subscription counting
notifications), `adapter` (our own adapter for one source of a collector config, the class the
collector runs, delivering to a sink that only counts). Every role prints one JSON line a
second, `{"t": wall time, "n": count}`, so the orchestrator can take the rate over its own
steady window; servers (and `adapter`, once connected) print `{"ready": true}` once they listen.
They run until their `--duration` ends or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

MQTT_TOPIC = "bench/{machine}/data"
OPCUA_NS_URI = "urn:shopfloor:bench"
# What the bare clients do by default, and bench.e2e configures the collector to do alike:
MODBUS_PER_REQUEST = 125  # registers per read request (the Modbus maximum)
OPCUA_SAMPLING_MS = 0  # monitored items sample as fast as the server can
OPCUA_QUEUE_SIZE = 10


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class Ticker:
    """Prints the running count once a second from a thread (the counted loop never pauses)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(1.0 - time.time() % 1.0):
            emit(t=time.time(), n=self._count())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        emit(t=time.time(), n=self._count(), final=True)


def stop_event_on_sigterm() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def machine_name(i: int) -> str:
    return f"m{i:04d}"


# -- MQTT ----------------------------------------------------------------------------------------


def mqtt_pub(args: argparse.Namespace) -> None:
    """Publish `{"ts": epoch ms, "v1": .., "vK": ..}` round-robin over the topics at QoS 1.

    `--rate` 0 publishes as fast as paho can; otherwise paced in 10 ms slices. Timestamps are
    strictly increasing per topic (a gateway's clock), so no two readings of a tag collide.
    """
    import random

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    rng = random.Random(args.seed)
    topics = [
        MQTT_TOPIC.format(machine=machine_name(i))
        for i in range(args.first, args.first + args.topics)
    ]
    blocks = [
        ",".join(f'"v{k + 1}":{rng.uniform(0, 1000):.3f}' for k in range(args.values)) + "}"
        for _ in range(64)
    ]
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{args.first}"
    )
    client.max_inflight_messages_set(args.inflight)
    client.max_queued_messages_set(args.inflight * 2)
    client.connect(args.host, args.port, keepalive=60)
    client.loop_start()
    stop = stop_event_on_sigterm()
    last_ts = [0] * len(topics)
    sent = 0
    ticker = Ticker(lambda: sent).start()
    end = time.monotonic() + args.duration
    slice_s = 0.01
    per_slice = args.rate * slice_s
    budget = 0.0
    next_slice = time.monotonic()
    i = 0
    while not stop.is_set() and time.monotonic() < end:
        if args.rate:
            now = time.monotonic()
            if now < next_slice:
                time.sleep(next_slice - now)
            next_slice += slice_s
            budget += per_slice
            todo = int(budget)
            budget -= todo
        else:
            todo = 100
        for _ in range(todo):
            t = i % len(topics)
            ts = max(int(time.time() * 1000), last_ts[t] + 1)
            last_ts[t] = ts
            payload = f'{{"ts":{ts},{blocks[i % 64]}'.encode()
            while True:
                info = client.publish(topics[t], payload, qos=args.qos)
                if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
                    break
                time.sleep(0.001)  # paho's queue is full: the broker sets the pace
            i += 1
            sent += 1
    ticker.stop()
    client.loop_stop()
    client.disconnect()


def mqtt_bare(args: argparse.Namespace) -> None:
    """A plain paho subscriber: parse every JSON payload and touch every value."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    messages = 0
    values = 0

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal messages, values
        doc = json.loads(msg.payload)
        values += sum(1 for k, v in doc.items() if k != "ts" and float(v) == float(v))
        messages += 1

    def on_connect(c: mqtt.Client, *_: object) -> None:
        c.subscribe(MQTT_TOPIC.format(machine="+"), qos=args.qos)

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="bench-bare",
        protocol=MQTTProtocolVersion.MQTTv5
        if args.protocol == "5"
        else MQTTProtocolVersion.MQTTv311,
    )
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect(args.host, args.port, keepalive=60)
    stop = stop_event_on_sigterm()
    ticker = Ticker(lambda: values).start()
    client.loop_start()
    stop.wait(args.duration)
    client.loop_stop()
    ticker.stop()
    emit(messages=messages, values=values)


# -- Modbus --------------------------------------------------------------------------------------


def modbus_server(args: argparse.Namespace) -> None:
    """Unit 1 with `--registers` holding registers; values change on every read (a live PLC)."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType as SimType
    from pymodbus.simulator import SimData, SimDevice

    reads = 0

    async def action(
        _fc: int, start: int, address: int, count: int, registers: list[int], _set: object
    ) -> None:
        nonlocal reads
        reads += 1
        base = address - start
        registers[base] = reads & 0xFFFF  # one changing word per request, cheap for the server

    async def main() -> None:
        regs = [SimData(0, count=args.registers, values=0, datatype=SimType.REGISTERS)]
        bits = [SimData(0, count=16, values=False, datatype=SimType.BITS)]
        device = SimDevice(id=1, simdata=(bits, list(bits), regs, list(regs)), action=action)
        server = ModbusTcpServer([device], address=("127.0.0.1", args.port))
        await server.serve_forever(background=True)
        emit(ready=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.shutdown()
        emit(reads=reads)

    asyncio.run(main())


def modbus_bare(args: argparse.Namespace) -> None:
    """A plain pymodbus client reading `--registers` registers in requests of `--per-request`."""
    from pymodbus.client import AsyncModbusTcpClient

    registers = 0

    async def main() -> None:
        nonlocal registers
        client = AsyncModbusTcpClient("127.0.0.1", port=args.port, timeout=2, retries=0)
        await client.connect()
        plan = [
            (a, min(args.per_request, args.registers - a))
            for a in range(0, args.registers, args.per_request)
        ]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        end = loop.time() + args.duration
        while not stop.is_set() and loop.time() < end:
            for address, count in plan:
                rr = await client.read_holding_registers(address, count=count, device_id=1)
                if rr.isError():
                    raise RuntimeError(f"read {address}+{count} failed: {rr}")
                registers += len(rr.registers)
        client.close()

    ticker = Ticker(lambda: registers).start()
    asyncio.run(main())
    ticker.stop()


# -- OPC UA --------------------------------------------------------------------------------------


def opcua_server(args: argparse.Namespace) -> None:
    """`--variables` doubles under ns=2;s=v0..; each is written every `--period` seconds."""
    import datetime as dt

    from asyncua import Server, ua

    writes = 0

    async def main() -> None:
        nonlocal writes
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{args.port}/bench")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace(OPCUA_NS_URI)
        folder = await server.nodes.objects.add_object(ns, "Bench")
        ids = []
        for i in range(args.variables):
            node = await folder.add_variable(ua.NodeId(f"v{i}", ns), f"v{i}", 0.0)
            ids.append(node.nodeid)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            emit(ready=True, namespace=ns)
            next_at = loop.time()
            step = 0
            while not stop.is_set():
                step += 1
                now = dt.datetime.now(dt.UTC)
                for k, nodeid in enumerate(ids):
                    dv = ua.DataValue(
                        ua.Variant(float(step * 1000 + k), ua.VariantType.Double),
                        SourceTimestamp=now,
                        ServerTimestamp=now,
                    )
                    await server.write_attribute_value(nodeid, dv)
                writes += len(ids)
                next_at = max(next_at + args.period, loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), next_at - loop.time())
        emit(writes=writes)

    asyncio.run(main())


def opcua_bare(args: argparse.Namespace) -> None:
    """A plain asyncua subscription on the same nodes, counting data change notifications."""
    from asyncua import Client, ua

    notifications = 0

    class Handler:
        def datachange_notification(self, _node: object, val: object, _data: object) -> None:
            nonlocal notifications
            notifications += 1

    async def main() -> None:
        client = Client(f"opc.tcp://127.0.0.1:{args.port}/bench", timeout=10)
        async with client:
            sub = await client.create_subscription(args.publishing_ms, Handler())
            items = []
            for i in range(args.variables):
                params = ua.MonitoringParameters()
                params.ClientHandle = i + 1
                params.SamplingInterval = args.sampling_ms
                params.QueueSize = args.queue_size
                params.DiscardOldest = True
                rv = ua.ReadValueId()
                rv.NodeId = ua.NodeId(f"v{i}", args.namespace)
                rv.AttributeId = ua.AttributeIds.Value
                req = ua.MonitoredItemCreateRequest()
                req.ItemToMonitor = rv
                req.MonitoringMode = ua.MonitoringMode.Reporting
                req.RequestedParameters = params
                items.append(req)
            await sub.create_monitored_items(items)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)

    ticker = Ticker(lambda: notifications).start()
    asyncio.run(main())
    ticker.stop()


# -- our adapter, alone -------------------------------------------------------------------------


def adapter(args: argparse.Namespace) -> None:
    """The collector's adapter for `--source` of `--config`, with a sink that only counts.

    The same class on the same config as `shopfloor collect`, minus routing, pipeline and
    database: the sink returns at once (for MQTT: storage that costs nothing, so every batch is
    acknowledged as soon as it is handed over). Prints `{"ready": true}` once connected, then
    the usual `{"t", "n"}` lines, and at the end the adapter's status and its CPU seconds.
    """
    from adapters.base import Reading
    from adapters.registry import create_adapter
    from collector.logs import setup_logging
    from collector.runner import settle_garbage_collector
    from config import load_config

    setup_logging(0)  # the adapter's warnings and errors go to stderr, the role's log
    cfg = load_config(args.config)
    settle_garbage_collector()  # as `shopfloor collect` does once its config is loaded
    by_name = {s.name: s for s in cfg.sources}
    if args.source not in by_name:
        raise SystemExit(
            f"{args.config}: no source {args.source!r}; its sources: {sorted(by_name) or 'none'}"
        )
    readings = 0

    async def counting_sink(batch: Sequence[Reading]) -> None:
        nonlocal readings
        readings += len(batch)

    async def main() -> None:
        running = create_adapter(by_name[args.source], counting_sink)
        task = asyncio.create_task(running.run(), name=f"adapter-{args.source}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        end = loop.time() + args.duration
        while not (running.status.connected or stop.is_set() or task.done() or loop.time() > end):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
        if running.status.connected:
            emit(ready=True)
        if not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, end - loop.time()))
        await running.stop()
        await task  # run() returns after stop(); an exception here is a bug worth seeing
        st = running.status
        emit(
            readings=readings,
            errors=st.errors,
            last_error=st.last_error,
            reconnects=st.reconnects,
            malformed=st.malformed,
            **st.extra,
        )

    ticker = Ticker(lambda: readings).start()
    asyncio.run(main())
    ticker.stop()
    cpu = os.times()
    emit(cpu_s=cpu.user + cpu.system, readings=readings)


# -- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True)

    def options(*parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        """A group of options that several roles take."""
        return argparse.ArgumentParser(add_help=False, parents=list(parents))

    server = options()
    server.add_argument("--port", type=int, required=True)
    client = options(server)  # clients end by themselves
    client.add_argument("--duration", type=float, default=60)
    mqtt = options(client)
    mqtt.add_argument("--host", default="127.0.0.1")
    mqtt.add_argument("--qos", type=int, default=1)
    registers = options()
    registers.add_argument("--registers", type=int, default=1000)
    variables = options()
    variables.add_argument("--variables", type=int, default=1000)

    p = roles.add_parser("mqtt-pub", parents=[mqtt])
    p.add_argument("--first", type=int, default=0, help="first machine (topic) index")
    p.add_argument("--topics", type=int, default=50)
    p.add_argument("--values", type=int, default=20)
    p.add_argument("--rate", type=float, default=0, help="messages/s; 0: as fast as possible")
    p.add_argument("--inflight", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=mqtt_pub)
    p = roles.add_parser("mqtt-bare", parents=[mqtt])
    p.add_argument(
        "--protocol", choices=["5", "3.1.1"], default="5", help="MQTT version, as the collector's"
    )
    p.set_defaults(func=mqtt_bare)
    roles.add_parser("modbus-server", parents=[server, registers]).set_defaults(func=modbus_server)
    p = roles.add_parser("modbus-bare", parents=[client, registers])
    p.add_argument("--per-request", type=int, default=MODBUS_PER_REQUEST)
    p.set_defaults(func=modbus_bare)
    p = roles.add_parser("opcua-server", parents=[server, variables])
    p.add_argument("--period", type=float, default=0.1)
    p.set_defaults(func=opcua_server)
    p = roles.add_parser("opcua-bare", parents=[client, variables])
    p.add_argument("--namespace", type=int, default=2)
    p.add_argument("--publishing-ms", type=float, default=100)
    p.add_argument("--sampling-ms", type=float, default=OPCUA_SAMPLING_MS)
    p.add_argument("--queue-size", type=int, default=OPCUA_QUEUE_SIZE)
    p.set_defaults(func=opcua_bare)
    p = roles.add_parser("adapter")
    p.add_argument("--config", required=True, help="a collector config (bench.e2e writes one)")
    p.add_argument("--source", required=True, help="the name of the source to run")
    p.add_argument("--duration", type=float, default=60)
    p.set_defaults(func=adapter)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
