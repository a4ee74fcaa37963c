"""paho-mqtt 2.x in its own network thread, handed over to asyncio: an MQTT source's transport.

- `open()` makes the client (unreadable TLS files: an error retried until stop, not raised);
  `start()` connects in paho's thread, which retries with paho's backoff until the broker
  answers. Every (re)connect subscribes the filters again and counts a new `generation`; each
  `Message` carries the one that delivered it. `status.connected` is set at the SUBACK, when
  messages published from then on reach us.
- Hand-over: paho's thread waits for one of `queue_size` slots (backpressure: meanwhile it reads
  nothing from the socket, so TCP and the broker's in-flight window hold back the rest), then
  wakes the event loop once per burst, not per message (each wake-up writes to the loop's
  self-pipe). `get()` and `take()` give messages in arrival order; `wake()` is for stop.
- Acks are manual (`ack()`): whoever stores the messages decides when (ledger.py).
- `disconnect()` ends paho's thread; `drain()` then gives what was handed over and not taken.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.base import SourceStatus
from adapters.errors import ConfigurationError
from adapters.reconnect import FailureLog, pause
from config.sources.mqtt import MqttSource

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Message:
    """One PUBLISH as received, held until it is acknowledged."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    generation: int  # the connection that delivered it
    arrived: dt.datetime
    stored: bool = False  # set by the ledger: its readings are stored, it waits for its ack


class MqttTransport:
    """One paho client for one source's broker, session and subscription `filters`."""

    def __init__(
        self, source: MqttSource, filters: Sequence[str], status: SourceStatus, queue_size: int
    ) -> None:
        self.source = source
        self.filters = list(filters)
        self.status = status  # connected, reconnects, connect errors: the adapter's status
        self.generation = 0  # connections made: 0 before the first
        self._subscribe_mid: int | None = None  # the SUBSCRIBE of the current connection
        self._connected_detail = ""
        self._failures = FailureLog(log, source.name)
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._slots = threading.Semaphore(queue_size)
        self._arrivals: deque[Message] = deque()  # from the paho thread, until the loop wakes
        self._wake_pending = False
        self._closing = threading.Event()

    # -- connection ----------------------------------------------------------------------------

    async def open(self, stop: asyncio.Event) -> bool:
        """The client, for this event loop; False if `stop` came before its TLS files could be
        read (an error retried every `reconnect_max_s`, never raised)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._closing.clear()
        while not stop.is_set():
            try:
                self._client = self._make_client()
                return True
            except ConfigurationError as exc:
                self.status.errors += 1
                self.status.last_error = str(exc)
                wait = self.source.reconnect_max_s
                self._failures.failed("connection", f"{exc} (retried every {wait:.0f}s)")
                await pause(stop, wait)
        return False

    def _make_client(self) -> mqtt.Client:
        src = self.source
        v5 = src.protocol_version == "5"
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=src.effective_client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else src.clean_start,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        if src.username is not None:
            client.username_pw_set(
                src.username, src.password.get_secret_value() if src.password else None
            )
        if src.tls is not None:
            try:
                client.tls_set(
                    ca_certs=str(src.tls.ca_file) if src.tls.ca_file else None,
                    certfile=str(src.tls.cert_file) if src.tls.cert_file else None,
                    keyfile=str(src.tls.key_file) if src.tls.key_file else None,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise ConfigurationError(f"cannot load TLS files: {exc}", source=src.name) from exc
            client.tls_insecure_set(src.tls.insecure)
        # paho annotates whole seconds; it takes float ones
        client.reconnect_delay_set(src.reconnect_min_s, src.reconnect_max_s)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in paho's thread; it retries with backoff until the broker answers."""
        assert self._client is not None, "open() first"
        src = self.source
        v5 = src.protocol_version == "5"
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 0 if src.clean_start else src.session_expiry_s
        self._closing.clear()
        self._client.connect_async(
            src.host,
            src.port,
            keepalive=src.keepalive_s,
            clean_start=src.clean_start if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()

    async def wait_connected(self, stop: asyncio.Event) -> None:
        while not self.status.connected and not stop.is_set():
            await pause(stop, 0.05)

    async def disconnect(self) -> None:
        """End the connection and paho's thread: nothing arrives any more."""
        self._closing.set()
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)
        self.status.connected = False

    def ack(self, messages: Iterable[Message]) -> None:
        """PUBACK / PUBCOMP for these messages, in the order given."""
        client = self._client
        if client is not None:
            for m in messages:
                client.ack(m.mid, m.qos)

    # -- paho's thread -------------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _properties: Any
    ) -> None:
        if reason.is_failure:
            self._connect_failed(f"broker refused the connection: {reason}")
            return
        self.generation += 1
        if self.generation > 1:
            self.status.reconnects += 1
        src, present = self.source, flags.session_present
        self._connected_detail = f"connected to {src.host}:{src.port} (session present: {present})"
        if src.protocol_version == "5":
            # retainHandling 1: retained messages only for a new subscription, not again on
            # every resubscribe of a persistent session.
            opts = SubscribeOptions(qos=src.qos, retainHandling=1)
            _, self._subscribe_mid = client.subscribe([(f, opts) for f in self.filters])
        else:
            topics: list[tuple[str, int]] = [(f, src.qos) for f in self.filters]
            _, self._subscribe_mid = client.subscribe(topics)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reasons: Any, _properties: Any
    ) -> None:
        """Connected once the broker has the subscriptions: a message published before the
        SUBACK of a new session goes nowhere, so `connected` waits for it."""
        if mid != self._subscribe_mid:
            return
        refused = [f for f, r in zip(self.filters, reasons, strict=False) if r.is_failure]
        if refused:
            self.status.errors += 1
            self.status.last_error = f"the broker refused the subscription to {refused}"
            self._failures.failed("subscription", self.status.last_error)
        else:
            self._failures.recovered("subscription")
        self.status.connected = True
        self._failures.connected("connection", self._connected_detail)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._connect_failed(f"cannot connect to {self.source.host}:{self.source.port}")

    def _connect_failed(self, message: str) -> None:
        self.status.connected = False
        self.status.errors += 1
        self.status.last_error = message
        self._failures.failed("connection", message)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        was = self.status.connected
        self.status.connected = False
        if was and not self._closing.is_set():  # the broker's doing: paho reconnects
            self._connect_failed(f"connection lost: {reason}")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """Wait for room in the queue (backpressure), then hand over."""
        now = dt.datetime.now(dt.UTC)
        item = Message(msg.topic, bytes(msg.payload), msg.qos, msg.mid, self.generation, now)
        while not self._slots.acquire(timeout=0.2):
            if self._closing.is_set():
                return  # not acknowledged: the broker delivers it again next session
        loop = self._loop
        if loop is None or loop.is_closed():
            self._slots.release()
            return
        # The flag is cleared before the loop takes the arrivals, so a message appended after
        # that is either taken too or schedules the next wake-up.
        self._arrivals.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            try:
                loop.call_soon_threadsafe(self._take_arrivals)
            except RuntimeError:  # the loop closed meanwhile: nothing will take them
                self._wake_pending = False

    # -- the event loop's side -----------------------------------------------------------------

    def _take_arrivals(self) -> None:
        self._wake_pending = False
        arrivals, put = self._arrivals, self._queue.put_nowait
        while arrivals:
            put(arrivals.popleft())

    @property
    def queued(self) -> bool:
        """Whether `take()` would give a message (or the wake-up) without waiting."""
        return not self._queue.empty()

    async def get(self) -> Message | None:
        """The next message, waiting for it; None when woken by `wake()`."""
        item = await self._queue.get()
        if item is not None:
            self._slots.release()
        return item

    def take(self, most: int, first: Message | None = None) -> tuple[list[Message], bool]:
        """`first` and what is queued, up to `most` messages, without waiting; True if the
        wake-up was among them."""
        batch = [] if first is None else [first]
        queue = self._queue
        while len(batch) < most and not queue.empty():
            item = queue.get_nowait()
            if item is None:
                return batch, True
            self._slots.release()
            batch.append(item)
        return batch, False

    def wake(self) -> None:
        """Make `get()` return None (and `take()` stop there): the consumer is to stop."""
        self._queue.put_nowait(None)

    def drain(self) -> list[Message]:
        """Every message handed over and not taken (call after `disconnect()`)."""
        self._take_arrivals()  # the paho thread has stopped: what it handed over is all here
        messages: list[Message] = []
        while not self._queue.empty():  # `take` stops at a wake-up: go on past it
            messages += self.take(self._queue.qsize())[0]
        return messages
