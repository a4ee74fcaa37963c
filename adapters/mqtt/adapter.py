"""The MQTT adapter: paho-mqtt 2.x in its own network thread, readings handed to the sink in order.

Delivery (at least once for QoS 1 and 2 with a persistent session):

- paho runs with `manual_ack=True`: a message is acknowledged (PUBACK / PUBCOMP) only after the
  sink returned for the batch holding it and for every earlier batch. Acks are sent in arrival
  order, as MQTT requires.
- Up to `max_inflight` sink calls (4) are under way at once, so the next batch is decoded while
  earlier ones commit (the collector's sink returns only once rows are durable). Calls start in
  arrival order; they may return in any order, acks still go in arrival order. A batch that
  returned keeps its slot until it is acknowledged.
- The paho thread hands messages over through a bounded queue (`queue_size`); when it is full
  the thread waits, which stops reading the socket: TCP and the broker's in-flight window are
  the backpressure. A sink blocked longer than 1.5 keepalives makes the broker drop us; the
  unacknowledged messages then come again on the persistent session.
- When a sink call fails, no new call starts; the ones under way finish, and nothing from the
  failed batch on is acknowledged (later batches included, even stored ones: acks go in order).
  QoS 1 messages are dropped here and the session is reconnected, so the broker redelivers them
  (it only redelivers on a new connection); later batches that were stored are then stored
  again (idempotent with a payload timestamp, else a duplicate). QoS 2 messages were already
  released by the broker (PUBREL) and would not come again, so those of failed batches, and QoS
  0 ones of failed batches, are kept and offered to the sink again before newer ones; QoS 2
  messages of stored batches are kept only to send their PUBCOMP in order.
- So after a failed batch, later batches already handed over may reach the sink before the
  redelivered one.
- Messages of an earlier connection are still delivered to the sink, but a QoS 1 ack for them is
  not sent on the new connection (the broker redelivers them: a duplicate, never a loss).

A payload that cannot be decoded (or whose decoding fails in a way nobody foresaw) is logged
with its topic, counted in `status.malformed`, handed to the `malformed` sink (the collector keeps
it in rejected_readings, as durably as readings) and then acknowledged like the others: a poison
message is quarantined once, never redelivered forever. Messages whose topic matches no tag
count in `extra["unmatched"]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.base import (
    Malformed,
    MalformedSink,
    Reading,
    ReadingSink,
    SourceStatus,
    good_readings,
)
from adapters.errors import ConfigurationError, DecodeError
from adapters.mqtt.payload import Decoder, FieldSpec
from adapters.mqtt.topics import matches, subscription_filters, template_filter
from config.sources.mqtt import MqttSource, MqttTag

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # messages between the paho thread and the sink
MAX_BATCH = 500  # readings' messages per sink call
MAX_INFLIGHT = 4  # sink calls under way at once: the next batch is decoded while others commit


@dataclass(slots=True)
class _Message:
    topic: str
    payload: bytes
    qos: int
    mid: int
    generation: int  # which connection delivered it
    arrived: dt.datetime
    stored: bool = False  # its readings are in the sink already: held only to ack it in order


@dataclass(slots=True)
class _Batch:
    """One sink call's messages; `call` is None when none of them gave a reading."""

    messages: list[_Message]
    readings: int
    call: asyncio.Future[None] | None

    @property
    def error(self) -> BaseException | None:
        """Why the finished call failed; None while it runs or when it succeeded."""
        call = self.call
        if call is None or not call.done():
            return None
        if call.cancelled():
            return asyncio.CancelledError("sink call cancelled")
        return call.exception()

    @property
    def succeeded(self) -> bool:
        return self.call is None or (self.call.done() and self.error is None)

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class _TagPlan(FieldSpec):
    """How to read one tag from a message, computed once from its config."""

    index: int  # position in the source's tags: readings keep configuration order
    address: str  # the tag's reading_address

    @classmethod
    def of(cls, index: int, tag: MqttTag) -> _TagPlan:
        return cls(
            tag.field,
            tag.timestamp_field,
            tag.timestamp_format,
            index=index,
            address=tag.reading_address,
        )


@dataclass(frozen=True, slots=True)
class _Topic:
    """One topic name's tags (their addresses, in configuration order) and their decoder."""

    addresses: tuple[str, ...]
    decode: Decoder


class _Stop:
    """Queue sentinel: wakes the consumer for stop()."""


class MqttAdapter:
    """Subscribes to the source's topics and delivers its tags' readings to the sink."""

    def __init__(
        self,
        source: MqttSource,
        sink: ReadingSink,
        *,
        queue_size: int = QUEUE_SIZE,
        max_batch: int = MAX_BATCH,
        max_inflight: int = MAX_INFLIGHT,
        malformed: MalformedSink | None = None,
    ) -> None:
        if max_batch < 1 or max_inflight < 1 or queue_size < 1:
            raise ValueError(
                f"MQTT source {source.name!r}: queue_size, max_batch and max_inflight must be "
                f">= 1, got {queue_size}, {max_batch}, {max_inflight}"
            )
        self.source = source
        self._sink = sink
        self._malformed = malformed
        self.status = SourceStatus(source=source.name, protocol="mqtt")
        self.status.extra["unmatched"] = 0
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._queue_size = queue_size
        self._filters = subscription_filters([template_filter(t.topic) for t in source.tags])
        # Each tag's decoding worked out once (its address and paths), not per reading.
        self._exact: dict[str, list[_TagPlan]] = {}  # filter without wildcards -> its tags
        self._wild: list[tuple[str, _TagPlan]] = []  # filters with + or #, matched per topic
        for index, tag in enumerate(source.tags):
            plan = _TagPlan.of(index, tag)
            topic_filter = tag.topic_filter
            if "+" in topic_filter or "#" in topic_filter:
                self._wild.append((topic_filter, plan))
            else:
                self._exact.setdefault(topic_filter, []).append(plan)
        self._routes: dict[str, _Topic] = {}  # topic name -> its tags, filled lazily
        self._retry: list[_Message] = []
        self._sink_failures = 0  # in a row: the resync delay doubles with each
        self._generation = 0
        self._connected_once = False
        self._failing = False  # connection failure logged at ERROR once, then DEBUG
        self._warned_topics: set[str] = set()
        self._closing = threading.Event()
        self._stop_requested = False
        self._stop_event = asyncio.Event()
        self._running = False
        self._done = asyncio.Event()
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Message | _Stop] | None = None
        self._slots = threading.Semaphore(queue_size)
        self._arrivals: deque[_Message] = deque()  # from the paho thread, until the loop wakes
        self._wake_pending = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, deliver, reconnect; return after stop(). Never raises for broker trouble."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._running = True
        self._done.clear()
        self._closing.clear()
        client = await self._client_when_configured()
        if client is None:  # stopped before the TLS files could be loaded
            self._running = False
            self._done.set()
            return
        self._client = client
        try:
            self._start(client)
            while not self._stop_requested:
                ok = await self._consume()
                if ok or self._stop_requested:
                    break
                await self._resync(client)
            await self._disconnect(client)  # nothing arrives any more
            await self._store_unrepeatable()
        finally:
            await self._shutdown(client)
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        """Let the sink calls under way finish (acks as they allow), disconnect and return."""
        self._stop_requested = True
        self._stop_event.set()
        if not self._running or self._queue is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._queue.put_nowait, _Stop())
        await self._done.wait()

    # -- paho client ---------------------------------------------------------------------------

    async def _client_when_configured(self) -> mqtt.Client | None:
        """The client; unreadable TLS files are an error retried slowly, not raised."""
        while not self._stop_requested:
            try:
                return self._make_client()
            except ConfigurationError as exc:
                self.status.errors += 1
                self.status.last_error = str(exc)
                log.error("%s; trying again in %.0fs", exc, self.source.reconnect_max_s)
                assert self._queue is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.get(), self.source.reconnect_max_s)
        return None

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
        client.reconnect_delay_set(src.reconnect_min_s, src.reconnect_max_s)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _start(self, client: mqtt.Client) -> None:
        """Connect in paho's thread; it retries with backoff until the broker answers."""
        src = self.source
        v5 = src.protocol_version == "5"
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 0 if src.clean_start else src.session_expiry_s
        clean_start = src.clean_start if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        client.connect_async(
            src.host,
            src.port,
            keepalive=src.keepalive_s,
            clean_start=clean_start,
            properties=properties,
        )
        client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _properties: Any
    ) -> None:
        if reason.is_failure:
            self._connect_failed(f"broker refused the connection: {reason}")
            return
        self._generation += 1
        if self._connected_once:
            self.status.reconnects += 1
        self._connected_once = True
        self.status.connected = True
        log.log(
            logging.INFO if self._failing or self._generation > 1 else logging.DEBUG,
            "%s: connected to %s:%s (session present: %s)",
            self.source.name,
            self.source.host,
            self.source.port,
            flags.session_present,
        )
        self._failing = False
        qos = self.source.qos
        if self.source.protocol_version == "5":
            # retainHandling 1: retained messages only for a new subscription, not again on
            # every resubscribe of a persistent session.
            opts = SubscribeOptions(qos=qos, retainHandling=1)
            client.subscribe([(f, opts) for f in self._filters])
        else:
            client.subscribe([(f, qos) for f in self._filters])

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._connect_failed(f"cannot connect to {self.source.host}:{self.source.port}")

    def _connect_failed(self, message: str) -> None:
        self.status.connected = False
        self.status.errors += 1
        self.status.last_error = message
        log.log(
            logging.DEBUG if self._failing else logging.ERROR,
            "%s: %s; retrying",
            self.source.name,
            message,
        )
        self._failing = True

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        was = self.status.connected
        self.status.connected = False
        if was and not self._closing.is_set():
            self.status.errors += 1
            self.status.last_error = f"connection lost: {reason}"
            log.warning("%s: connection lost (%s); reconnecting", self.source.name, reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """paho's thread: wait for room in the queue (backpressure), then hand over."""
        item = _Message(
            msg.topic,
            bytes(msg.payload),
            msg.qos,
            msg.mid,
            self._generation,
            dt.datetime.now(dt.UTC),
        )
        while not self._slots.acquire(timeout=0.2):
            if self._closing.is_set():
                return  # not acknowledged: the broker delivers it again next session
        loop = self._loop
        if loop is None or self._queue is None or loop.is_closed():
            self._slots.release()
            return
        # One wake-up of the loop per burst, not per message: each costs a write to its
        # self-pipe. The flag is cleared before the loop takes the arrivals, so a message
        # appended after that is either taken too or schedules the next wake-up.
        self._arrivals.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            try:
                loop.call_soon_threadsafe(self._take_arrivals)
            except RuntimeError:  # the loop closed meanwhile: nothing will take them
                self._wake_pending = False

    def _take_arrivals(self) -> None:
        """The loop's side of the hand-over: arrivals into the queue, in order."""
        self._wake_pending = False
        arrivals, put = self._arrivals, self._queue.put_nowait  # type: ignore[union-attr]
        while arrivals:
            put(arrivals.popleft())

    # -- consumer ------------------------------------------------------------------------------

    async def _consume(self) -> bool:
        """Deliver batches until stop (True) or a failed sink call (False).

        Up to `max_inflight` sink calls run at once, started in arrival order, so decoding the
        next batch overlaps the commit of the earlier ones. A batch is acknowledged once it and
        every earlier batch returned. After a failure nothing is started any more; the calls
        under way finish and `_sort_out_failure` decides what is kept.
        """
        assert self._queue is not None
        inflight: deque[_Batch] = deque()
        getter: asyncio.Future[_Message | _Stop] | None = None
        first: _Message | None = None  # taken from the queue by `getter`, not yet handed over
        stopping = False
        try:
            while True:
                self._ack_finished(inflight)
                if any(b.failed for b in inflight):
                    break
                stopping = stopping or self._stop_requested
                if stopping and not inflight:
                    return True
                room = not stopping and len(inflight) < self._max_inflight
                if room and (self._retry or first is not None or not self._queue.empty()):
                    messages, stop = self._take(first)
                    first = None
                    stopping = stopping or stop
                    if messages:
                        inflight.append(self._hand_over(messages))
                    continue
                waits: set[asyncio.Future[Any]] = {
                    b.call for b in inflight if b.call is not None and not b.call.done()
                }
                if room:
                    if getter is None:
                        getter = asyncio.ensure_future(self._queue.get())
                    waits.add(getter)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if getter is not None and getter.done():
                    item, getter = getter.result(), None
                    if isinstance(item, _Stop):
                        stopping = True
                    else:
                        self._slots.release()
                        first = item
            calls = [b.call for b in inflight if b.call is not None and not b.call.done()]
            if calls:
                await asyncio.wait(calls)  # they may be storing: wait, then ack what is certain
            self._ack_finished(inflight)
            self._sort_out_failure(inflight)
            return False
        finally:
            if first is not None and first.qos != 1:  # stopped or failed before it was used
                self._retry.append(first)
            if getter is not None and not getter.cancel() and not getter.cancelled():
                item = getter.result()  # got an item while we were leaving: keep it
                if isinstance(item, _Message):
                    self._slots.release()
                    if item.qos != 1:
                        self._retry.append(item)
            for b in inflight:  # only when cancelled: unacknowledged, so never lost
                if b.call is not None:
                    b.call.cancel()

    def _take(self, first: _Message | None) -> tuple[list[_Message], bool]:
        """The next batch: retries first, else `first` and what the queue holds; True at _Stop."""
        assert self._queue is not None
        if self._retry:
            batch, self._retry = self._retry[: self._max_batch], self._retry[self._max_batch :]
            if first is not None:
                self._retry.append(first)  # not reached: retries come only before the queue
            return batch, False
        batch = [] if first is None else [first]
        queue = self._queue
        while len(batch) < self._max_batch and not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, _Stop):
                return batch, True
            self._slots.release()
            batch.append(item)
        return batch, False

    def _hand_over(self, messages: list[_Message]) -> _Batch:
        """Decode and start the sink call; messages already `stored` only wait for their ack."""
        readings, malformed = self._decode([m for m in messages if not m.stored])
        call: asyncio.Future[None] | None = None
        if readings or (malformed and self._malformed is not None):
            call = asyncio.ensure_future(self._deliver(readings, malformed))
        return _Batch(messages, len(readings), call)

    async def _deliver(self, readings: list[Reading], malformed: list[Malformed]) -> None:
        """One batch's quarantined messages, then its readings: both durable before the ack."""
        if malformed and self._malformed is not None:
            await self._malformed(malformed)
        if readings:
            await self._sink(readings)

    def _ack_finished(self, inflight: deque[_Batch]) -> None:
        """Acknowledge the oldest batches, as long as they returned successfully."""
        while inflight and inflight[0].succeeded:
            batch = inflight.popleft()
            self._sink_failures = 0
            self._delivered(batch.readings)
            self._ack(batch.messages)

    def _sort_out_failure(self, failed: deque[_Batch]) -> None:
        """From the first failed batch on nothing is acknowledged (acks go in PUBLISH order).

        QoS 1 is dropped: the broker redelivers it on the new connection (also what later
        batches stored: a duplicate, never a loss). QoS 0 and 2 of failed batches are kept and
        offered again first, in order; QoS 2 of batches that were stored is kept only to send its
        PUBCOMP in order after them; QoS 0 of those is done.
        """
        kept: list[_Message] = []
        errors: list[BaseException] = []
        for batch in failed:
            error = batch.error
            if error is None:  # stored: counted now, acknowledged later
                self._delivered(batch.readings)
                for m in batch.messages:
                    if m.qos == 2:
                        m.stored = True
                        kept.append(m)
            else:
                errors.append(error)
                kept += [m for m in batch.messages if m.qos != 1]
        self._retry = kept + self._retry
        self.status.errors += len(errors)
        self.status.last_error = f"sink failed: {errors[0]!r}"
        log.error(
            "%s: sink failed (%d of %d call(s)), %d message(s) not acknowledged: %r",
            self.source.name,
            len(errors),
            len(failed),
            sum(len(b.messages) for b in failed),
            errors[0],
        )
        self._sink_failures += 1

    def _ack(self, batch: Sequence[_Message]) -> None:
        client = self._client
        if client is None:
            return
        for m in batch:
            if m.qos == 0:
                continue
            if m.qos == 1 and m.generation != self._generation:
                continue  # the broker redelivers it on this connection: ack that copy instead
            client.ack(m.mid, m.qos)

    async def _resync(self, client: mqtt.Client) -> None:
        """After a failed sink call: reconnect the session so the broker redelivers QoS 1."""
        assert self._queue is not None
        await self._disconnect(client)
        kept = [m for m in self._drain() if m.qos != 1]
        self._retry.extend(kept)
        self._closing.clear()
        delay = self.source.reconnect_min_s * 2 ** min(self._sink_failures - 1, 16)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), min(delay, self.source.reconnect_max_s))
        if not self._stop_requested:
            self._start(client)
            await self._until_connected()

    async def _until_connected(self) -> None:
        """Kept QoS 2 messages are acknowledged (PUBCOMP) once their retry succeeded: that must
        go on the new connection, since paho's reconnect() drops packets queued before it."""
        while not self.status.connected and not self._stop_requested:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), 0.05)

    def _drain(self) -> list[_Message]:
        assert self._queue is not None
        self._take_arrivals()  # the paho thread has stopped: what it handed over is all here
        items: list[_Message] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Message):
                self._slots.release()
                items.append(item)
        return items

    async def _disconnect(self, client: mqtt.Client) -> None:
        self._closing.set()
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self.status.connected = False

    async def _store_unrepeatable(self) -> None:
        """At stop: QoS 0 and 2 messages still held that the broker will not send again (queued,
        or of a failed call) go to the sink once more, in order. Their PUBCOMP cannot go out now;
        the broker repeats its PUBREL on the next session and gets it then. QoS 1 is left to the
        broker's redelivery, as on every path."""
        held = [m for m in [*self._retry, *self._drain()] if m.qos != 1 and not m.stored]
        self._retry = []
        for start in range(0, len(held), self._max_batch):
            readings, malformed = self._decode(held[start : start + self._max_batch])
            try:
                await self._deliver(readings, malformed)
            except Exception as exc:
                self.status.errors += 1
                self.status.last_error = f"sink failed at stop: {exc!r}"
                log.error(
                    "%s: sink failed at stop; %d QoS 0/2 message(s) not stored: %r",
                    self.source.name,
                    len(held) - start,
                    exc,
                )
                return
            self._delivered(len(readings))

    async def _shutdown(self, client: mqtt.Client) -> None:
        await self._disconnect(client)
        self._drain()
        self._client = None

    # -- decoding ------------------------------------------------------------------------------

    def _topic(self, topic: str) -> _Topic:
        route = self._routes.get(topic)
        if route is None:
            plans = list(self._exact.get(topic, ()))
            plans += [plan for f, plan in self._wild if matches(f, topic)]
            plans.sort(key=lambda p: p.index)  # configuration order, as before
            route = _Topic(tuple(p.address for p in plans), Decoder(plans))
            if len(self._routes) < 10_000:  # wildcard filters can see unbounded topic names
                self._routes[topic] = route
        return route

    def _decode(self, batch: Sequence[_Message]) -> tuple[list[Reading], list[Malformed]]:
        readings: list[Reading] = []
        malformed: list[Malformed] = []
        for m in batch:
            topic = self._topic(m.topic)
            if not topic.addresses:
                self.status.extra["unmatched"] += 1
                continue
            try:
                readings.extend(self._decode_message(m, topic))
            except DecodeError as exc:
                malformed.append(self._quarantine(m, str(exc), None))
            except Exception as exc:  # a decoding path nobody foresaw: still only this message
                malformed.append(self._quarantine(m, f"cannot be decoded: {exc!r}", exc))
            else:
                self._warned_topics.discard(m.topic)
        return readings, malformed

    def _quarantine(self, m: _Message, reason: str, bug: Exception | None) -> Malformed:
        """Count and log a message that gave no reading (its topic once, until it decodes)."""
        self.status.malformed += 1
        level = logging.DEBUG if m.topic in self._warned_topics else logging.WARNING
        if bug is not None:
            level = logging.ERROR
        log.log(
            level,
            "%s: malformed payload on topic %r quarantined: %s (payload %r)",
            self.source.name,
            m.topic,
            reason,
            m.payload[:200],
            exc_info=bug,
        )
        self._warned_topics.add(m.topic)
        return Malformed(self.source.name, m.topic, m.arrived, m.payload, reason)

    def _decode_message(self, m: _Message, topic: _Topic) -> list[Reading]:
        """Every tag's reading from one message, or DecodeError: a message is used whole."""
        values, texts, stamps = topic.decode(m.payload)  # one entry per address
        stamped: Iterable[dt.datetime]
        unstamped = stamps.count(None)  # values without a payload timestamp: arrival time
        if unstamped == len(stamps):
            stamped = repeat(m.arrived)
        elif unstamped:
            stamped = [m.arrived if ts is None else ts for ts in stamps]
        else:
            stamped = cast(list[dt.datetime], stamps)
        return good_readings(self.source.name, topic.addresses, stamped, values, texts)

    def _delivered(self, readings: int) -> None:
        if readings:
            self.status.readings += readings
            self.status.last_reading = dt.datetime.now(dt.UTC)
