"""Sparkplug B edge node front end (paho-mqtt 2.x, our own payload encoder).

One edge node per source (every tag names the same group and edge node); each tag's device is a
Sparkplug device (a machine, usually), tags without one are node metrics. On every CONNECT the
node takes the next bdSeq (0-255), puts it in its will (NDEATH) and in the NBIRTH it publishes
once connected, followed by one DBIRTH per device: every metric with name, alias, datatype and
its current value. Then DDATA/NDATA carry changes by alias only, stamped with the event's time
(ms), one seq counter for the node and its devices. An NCMD `Node Control/Rebirth` is answered
with the births again (same bdSeq). A stop publishes NDEATH before the disconnect. While not
connected, changes only update the image: the next births carry the current values (that is
how Sparkplug recovers; the data in between is not sent).

For tests: `skip_seq()` makes the next message leave a seq gap (the host's Rebirth request);
`drop_connection()` closes the socket without DISCONNECT, so the broker publishes the will.
Truth records (`type: sparkplug`): births, seq skipped, and each death (stop, dropped, lost).
Counters: `births`, `rebirths` (answered), `published`, `bd_seq`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from config.simulation import SimulationConfig
from config.sources.sparkplug import NAMESPACE, WILDCARD, SparkplugSource, SparkplugTag
from simulators.frontends import TimedEvent
from simulators.frontends import sparkplug_wire as wire
from simulators.frontends.mqtt import paho_client
from simulators.frontends.sparkplug_wire import WireMetric, encode_payload, true_booleans
from simulators.model import PartDone
from simulators.recorder import iso
from simulators.values import COUNTERS, MachineImage, counter_modulus, signal_of

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 5.0
REBIRTH = "Node Control/Rebirth"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MEASURES = {"temperature": wire.DOUBLE, "speed": wire.DOUBLE, "pressure": wire.DOUBLE}


def ms(ts: dt.datetime) -> int:
    """Sparkplug time: whole milliseconds since the epoch (truncated, as the truth is in µs)."""
    return (ts - EPOCH) // dt.timedelta(milliseconds=1)


@dataclass(frozen=True)
class _Metric:
    tag: SparkplugTag
    alias: int
    datatype: int
    signal: str
    event: bool  # a delta counter: one value per finished part


def _datatype(tag: SparkplugTag, modulus: int) -> int:
    signal = signal_of(tag)
    if signal in ("state", "stop_reason"):
        return wire.INT32
    if signal in COUNTERS:
        return wire.UINT32 if modulus <= 2**32 else wire.UINT64
    if signal == "running":
        return wire.BOOLEAN
    return _MEASURES[signal]


class SparkplugFrontEnd:
    def __init__(self, source: SparkplugSource, sim: SimulationConfig) -> None:
        self.name = source.name
        self.source = source
        self.sim = sim
        nodes = {(t.group, t.edge_node) for t in source.tags}
        if len(nodes) != 1 or WILDCARD in next(iter(nodes)):
            raise ValueError(
                f"source {source.name}: the simulated edge node needs every tag to name one "
                f"group and edge node, without +; got {sorted(nodes)}"
            )
        self.group, self.edge = next(iter(nodes))
        self.images: dict[str, MachineImage] = {t.machine: MachineImage() for t in source.tags}
        self.metrics: dict[str | None, list[_Metric]] = {}  # device (None: the node) -> metrics
        for alias, tag in enumerate(source.tags, start=1):
            modulus = counter_modulus(tag, sim.machine(tag.machine).counter_bits)
            event = tag.signal.is_count and tag.counter == "delta"
            metric = _Metric(tag, alias, _datatype(tag, modulus), signal_of(tag), event)
            self.metrics.setdefault(tag.device, []).append(metric)
        self.bd_seq = -1  # the first CONNECT makes it 0
        self.seq = 0
        self.births = 0
        self.rebirths = 0
        self.published = 0
        self.online = False  # born on the current connection
        self._stopping = False  # our own NDEATH is recorded by stop()
        self._drop_at: dt.datetime | None = None  # when drop_connection() cut the socket
        # Set by the runner once it runs: publishes what is due, gives the time the images are
        # exact at. Births are stamped with it (before it is set: the primed events' time).
        self.catch_up: Callable[[], Awaitable[dt.datetime]] | None = None
        self._as_of: dt.datetime | None = None
        self.record: Callable[[dict[str, Any]], None] | None = None  # the truth file's, if any
        self._pending: list[dict[str, Any]] = []  # records made before `record` was set
        self._births: set[asyncio.Task[None]] = set()
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = threading.Event()
        self._initial: list[TimedEvent] = []

    def describe(self) -> str:
        return (
            f"Sparkplug B edge node {self.group}/{self.edge} at {self.source.host}:"
            f"{self.source.port} (devices {', '.join(d for d in self.metrics if d) or 'none'})"
        )

    def prime(self, events: Sequence[TimedEvent]) -> None:
        self._initial = list(events)
        self._as_of = max((ts for _, ts in events), default=None)

    def topic(self, kind: str, device: str | None) -> str:
        base = f"{NAMESPACE}/{self.group}/{kind}/{self.edge}"
        return f"{base}/{device}" if device else base

    # -- connection ----------------------------------------------------------------------------

    async def start(self) -> None:
        src = self.source
        self._loop = asyncio.get_running_loop()
        for event, _ts in self._initial:
            if event.machine in self.images:
                self.images[event.machine].apply(event)
        self._initial = []
        client = paho_client(src)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(src.host, src.port, keepalive=src.keepalive_s)
        client.loop_start()
        self._client = client
        if not await asyncio.to_thread(self._connected.wait, CONNECT_WAIT_S):
            log.warning("%s: broker not reachable yet; paho keeps retrying", self.name)

    def _death(self) -> bytes:
        return encode_payload(
            None, None, [WireMetric("bdSeq", None, None, wire.INT64, self.bd_seq)]
        )

    def _on_pre_connect(self, client: mqtt.Client, _userdata: Any) -> None:
        self.bd_seq = (self.bd_seq + 1) % 256
        client.will_set(self.topic("NDEATH", None), self._death(), qos=1, retain=False)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.error("%s: broker refused the connection: %s", self.name, reason_code)
            return
        client.subscribe(self.topic("NCMD", None), qos=1)
        self._connected.set()
        self._soon(self._schedule_birth)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        at, self._drop_at = self._drop_at, None
        reason = "dropped" if at is not None else "connection lost"
        at = at or dt.datetime.now(dt.UTC)
        was, bd_seq = self._connected.is_set(), self.bd_seq  # before a reconnect takes the next
        self._connected.clear()
        if was:
            self._soon(lambda: self._offline(at, reason, bd_seq))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            names = true_booleans(bytes(msg.payload))
        except ValueError as exc:
            log.warning("%s: unreadable NCMD ignored: %s", self.name, exc)
            return
        if REBIRTH in names:
            self._soon(self._rebirth)

    def _soon(self, callback: Any) -> None:
        """Run `callback` in the event loop: births, data and seq all live there."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(callback)

    def _offline(self, at: dt.datetime, reason: str, bd_seq: int) -> None:
        self.online = False
        if not self._stopping:  # the broker publishes our will (unless it is the one away)
            self._note(at, "death", reason=reason, bd_seq=bd_seq)

    def drop_connection(self) -> None:
        """Cut the connection without DISCONNECT (any thread): the broker publishes our will
        NDEATH; paho reconnects with the next bdSeq and the births follow."""
        client = self._client
        sock = None if client is None else client.socket()
        if isinstance(sock, socket.socket):
            self._drop_at = dt.datetime.now(dt.UTC)
            sock.shutdown(socket.SHUT_RDWR)

    def _rebirth(self) -> None:
        self.rebirths += 1
        self._schedule_birth("rebirth")

    def _schedule_birth(self, reason: str = "connect") -> None:
        task = asyncio.ensure_future(self._birth(reason))
        self._births.add(task)
        task.add_done_callback(self._births.discard)

    # -- publishing ----------------------------------------------------------------------------

    async def _birth(self, reason: str) -> None:
        """NBIRTH (seq 0, bdSeq, Rebirth, node metrics), then a DBIRTH per device, with the
        values the images hold, at the time they hold them."""
        at = self._as_of or dt.datetime.now(dt.UTC)
        if self.catch_up is not None:
            at = await self.catch_up()
        if not self._connected.is_set() or self._client is None:
            return
        now = ms(at)
        self.seq = 0
        node = [
            WireMetric("bdSeq", None, now, wire.INT64, self.bd_seq),
            WireMetric(REBIRTH, None, now, wire.BOOLEAN, False),
            *self._full(None, now),
        ]
        self._send("NBIRTH", None, now, node)
        for device in self.metrics:
            if device is not None:
                self._send("DBIRTH", device, now, self._full(device, now))
        self.births += 1
        self.online = True
        aliases = {m.tag.reading_address: m.alias for ms_ in self.metrics.values() for m in ms_}
        self._note(at, "births", reason=reason, bd_seq=self.bd_seq, aliases=aliases)

    def attach(
        self,
        catch_up: Callable[[], Awaitable[dt.datetime]],
        record: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        """The runner's: publish what is due (before births), and the truth file's writer."""
        self.catch_up, self.record = catch_up, record
        self._note(None)

    def _note(self, at: dt.datetime | None, what: str = "", **fields: Any) -> None:
        """A truth-file record of the session: births (why, bdSeq, aliases), seq skipped; those
        made before the runner attached the truth file are written then."""
        if at is not None:
            record = {"type": "sparkplug", "ts": iso(at), "machine": None, "source": self.name}
            self._pending.append({**record, "what": what, **fields})
        if self.record is not None:
            for pending in self._pending:
                self.record(pending)
            self._pending.clear()

    def _full(self, device: str | None, now: int) -> list[WireMetric]:
        return [
            WireMetric(m.tag.metric, m.alias, now, m.datatype, self._value(m, None))
            for m in self.metrics.get(device, [])
        ]

    def _value(self, m: _Metric, part: PartDone | None) -> bool | int | float:
        if m.event:
            if part is None or part.machine != m.tag.machine:
                return 0
            return {
                "good_count": part.good,
                "reject_count": part.reject,
                "total_count": part.good + part.reject,
            }[m.signal]
        value = self.images[m.tag.machine].values[m.signal]
        if m.signal in COUNTERS:
            bits = self.sim.machine(m.tag.machine).counter_bits
            return int(value) % counter_modulus(m.tag, bits)
        return value

    def _send(self, kind: str, device: str | None, now: int, metrics: list[WireMetric]) -> None:
        assert self._client is not None
        payload = encode_payload(now, self.seq, metrics)
        self.seq = (self.seq + 1) % 256
        self._client.publish(self.topic(kind, device), payload, qos=0)
        self.published += 1

    def skip_seq(self) -> None:
        """Leave out one seq number: the host sees a gap."""
        self._note(dt.datetime.now(dt.UTC), "seq_skipped", seq=self.seq)
        self.seq = (self.seq + 1) % 256

    async def publish(self, events: Sequence[TimedEvent]) -> None:
        for event, ts in events:
            image = self.images.get(event.machine)
            if image is None:
                continue
            changed = image.apply(event)
            if not self.online:
                continue
            stamp = ms(ts)
            for device, metrics in self.metrics.items():
                mine = [m for m in metrics if m.tag.machine == event.machine]
                due = [
                    m
                    for m in mine
                    if (m.event and isinstance(event, PartDone))
                    or (not m.event and m.signal in changed)
                ]
                if not due:
                    continue
                part = event if isinstance(event, PartDone) else None
                data = [
                    WireMetric(None, m.alias, stamp, None, self._value(m, part), m.datatype)
                    for m in due
                ]
                self._send("DDATA" if device else "NDATA", device, stamp, data)

    async def stop(self) -> None:
        for task in list(self._births):
            task.cancel()
        client = self._client
        if client is None:
            return
        self._stopping = True
        if self._connected.is_set():
            self._note(dt.datetime.now(dt.UTC), "death", reason="stop", bd_seq=self.bd_seq)
            info = client.publish(self.topic("NDEATH", None), self._death(), qos=1)
            await asyncio.to_thread(info.wait_for_publish, CONNECT_WAIT_S)
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self._client = None
        self.online = False
