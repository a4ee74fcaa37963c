"""MQTT publisher front end (paho-mqtt 2.x): JSON payloads per topic of the source's tags.

Event topics (with a `counter: delta` tag) get one message per finished part, other topics one
whenever a value changes. A publish paho refuses (queue full, or QoS 0 while disconnected) is
waited out and retried, never dropped silently (docs/simulators.md, MQTT). Counters:
`published`, `retries`, `unacknowledged`, and `dropped` (only when stopping, each one logged).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from config.simulation import SimulationConfig
from config.sources.mqtt import MqttBroker, MqttSource, MqttTag
from simulators.frontends import TimedEvent
from simulators.model import PartDone
from simulators.recorder import iso
from simulators.values import COUNTERS, MachineImage, counter_modulus, signal_of

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000  # messages paho may hold; beyond it publish() says MQTT_ERR_QUEUE_SIZE
CONNECT_WAIT_S = 5.0
DRAIN_WAIT_S = 5.0
GIVE_UP_WHEN_CLOSING_S = 5.0


def paho_client(src: MqttBroker) -> mqtt.Client:
    """A paho client for a simulator on `src`'s broker: its credentials and TLS, reconnecting
    fast (the simulators' brokers come and go in tests); callbacks and connect are the caller's."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"shopfloor-sim-{src.name}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    if src.username:
        client.username_pw_set(
            src.username, src.password.get_secret_value() if src.password else None
        )
    if src.tls is not None:
        client.tls_set(
            ca_certs=str(src.tls.ca_file) if src.tls.ca_file else None,
            certfile=str(src.tls.cert_file) if src.tls.cert_file else None,
            keyfile=str(src.tls.key_file) if src.tls.key_file else None,
        )
        client.tls_insecure_set(src.tls.insecure)
    client.reconnect_delay_set(0.1, 2)  # type: ignore[arg-type]  # paho takes float seconds
    return client


@dataclass
class _Topic:
    topic: str
    tags: list[MqttTag] = field(default_factory=list)

    @property
    def is_event(self) -> bool:
        return any(t.signal.is_count and t.counter == "delta" for t in self.tags)


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def _timestamp(ts: dt.datetime, fmt: str) -> str | float | int:
    if fmt == "epoch_s":
        return ts.timestamp()
    if fmt == "epoch_ms":
        return round(ts.timestamp() * 1000)
    return iso(ts)


class MqttFrontEnd:
    def __init__(self, source: MqttSource, sim: SimulationConfig) -> None:
        self.name = source.name
        self.source = source
        self.sim = sim
        self.images: dict[str, MachineImage] = {t.machine: MachineImage() for t in source.tags}
        self.topics: dict[str, _Topic] = {}
        for tag in source.tags:
            signal_of(tag)
            if "+" in tag.topic_filter or "#" in tag.topic_filter:
                raise ValueError(
                    f"tag {tag.key}: the simulator publishes to concrete topics, "
                    f"not the filter {tag.topic_filter!r}"
                )
            self.topics.setdefault(tag.topic_filter, _Topic(tag.topic_filter)).tags.append(tag)
        self.published = 0
        self.retries = 0
        self.dropped = 0
        self.closing = False
        # mids handed to paho with QoS>0 and not yet acknowledged. Tracked through on_publish:
        # MQTTMessageInfo.is_published() raises for a message queued while disconnected,
        # although paho still delivers it after the reconnect.
        self._unacked: set[int] = set()
        self._early_acks: set[int] = set()
        self._ack_lock = threading.Lock()
        self._connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._initial: list[TimedEvent] = []

    def describe(self) -> str:
        return (
            f"MQTT publisher to {self.source.host}:{self.source.port} "
            f"(QoS {self.source.qos}; topics {', '.join(self.topics)})"
        )

    def prime(self, events: Sequence[TimedEvent]) -> None:
        self._initial = list(events)  # published as soon as the client exists

    async def start(self) -> None:
        src = self.source
        client = paho_client(src)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.connect_async(src.host, src.port, keepalive=src.keepalive_s)
        client.loop_start()
        self._client = client
        connected = await asyncio.to_thread(self._connected.wait, CONNECT_WAIT_S)
        if not connected:
            log.warning(
                "%s: broker %s:%s not reachable yet; publishing continues and paho keeps retrying",
                self.name,
                src.host,
                src.port,
            )
        await self.publish(self._initial)
        self._initial = []

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.error("%s: broker refused the connection: %s", self.name, reason_code)
            return
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        with self._ack_lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:
                self._early_acks.add(mid)  # acknowledged before _send recorded it

    @property
    def unacknowledged(self) -> int:
        with self._ack_lock:
            return len(self._unacked)

    def unacknowledged_mids(self) -> set[int]:
        """Message ids paho holds that the broker has not acknowledged yet."""
        with self._ack_lock:
            return set(self._unacked)

    def _payload(self, topic: _Topic, ts: dt.datetime, part: PartDone | None) -> bytes:
        doc: dict[str, Any] = {}
        scalar: Any = None
        for tag in topic.tags:
            signal = signal_of(tag)
            if signal in COUNTERS and tag.counter == "delta":
                value: Any = 0
                if part is not None and part.machine == tag.machine:
                    value = {
                        "good_count": part.good,
                        "reject_count": part.reject,
                        "total_count": part.good + part.reject,
                    }[signal]
            else:
                value = self.images[tag.machine].values[signal]
                if signal in COUNTERS:
                    bits = self.sim.machine(tag.machine).counter_bits
                    value = int(value) % counter_modulus(tag, bits)
            if tag.field:
                _set_path(doc, tag.field, value)
            else:
                scalar = value
            if tag.timestamp_field:
                _set_path(doc, tag.timestamp_field, _timestamp(ts, tag.timestamp_format))
        return json.dumps(doc if doc else scalar, separators=(",", ":")).encode()

    async def publish(self, events: Sequence[TimedEvent]) -> None:
        for event, ts in events:
            image = self.images.get(event.machine)
            if image is None:
                continue
            changed = image.apply(event)
            for topic in self.topics.values():
                mine = [t for t in topic.tags if t.machine == event.machine]
                if not mine:
                    continue
                if topic.is_event:
                    if isinstance(event, PartDone):
                        await self._send(topic.topic, self._payload(topic, ts, event))
                elif changed & {signal_of(t) for t in mine}:
                    await self._send(topic.topic, self._payload(topic, ts, None))

    async def _send(self, topic: str, payload: bytes) -> None:
        assert self._client is not None
        qos = self.source.qos
        delay, waited = 0.005, 0.0
        while True:
            info = self._client.publish(topic, payload, qos=qos)
            kept = info.rc == mqtt.MQTT_ERR_NO_CONN and qos > 0  # paho resends it on reconnect
            if info.rc == mqtt.MQTT_ERR_SUCCESS or kept:
                self.published += 1
                if qos > 0:
                    with self._ack_lock:
                        if info.mid in self._early_acks:
                            self._early_acks.discard(info.mid)
                        else:
                            self._unacked.add(info.mid)
                return
            if self.closing and waited >= GIVE_UP_WHEN_CLOSING_S:
                self.dropped += 1
                log.error(
                    "%s: dropped a message to %s while stopping: %s",
                    self.name,
                    topic,
                    mqtt.error_string(info.rc),
                )
                return
            self.retries += 1
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)

    async def stop(self) -> None:
        if self._client is None:
            return
        waited = 0.0
        while self.unacknowledged and waited < DRAIN_WAIT_S:
            await asyncio.sleep(0.02)
            waited += 0.02
        if self.unacknowledged:
            self.dropped += self.unacknowledged
            log.error(
                "%s: %d messages still unacknowledged at stop", self.name, self.unacknowledged
            )
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._client = None
