"""The Sparkplug B host application: transport messages -> sessions -> tag readings -> sink.

Each message is decoded and applied to its edge node's session once, in arrival order (seq and
aliases are state: a message applied twice would look like a gap). What is kept for a failed
sink call is therefore the batch's readings, offered again after a backoff until they are
stored or the source stops; the connection is not touched (a reconnect would bring nothing back
at QoS 0, and would publish our death to every edge node). Messages are acknowledged (QoS 1:
NDEATH, STATE) only after their readings are durable. Up to `max_inflight` sink calls overlap;
acknowledgements follow arrival order. The whole story: docs/adapters/sparkplug.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

from adapters.base import Malformed, MalformedSink, Reading, ReadingSink, SourceStatus
from adapters.errors import DecodeError
from adapters.mqtt.transport import Message
from adapters.reconnect import Backoff, FailureLog, pause
from adapters.sparkplug.host import says_offline
from adapters.sparkplug.payload import decode, encode_rebirth
from adapters.sparkplug.session import Sessions
from adapters.sparkplug.tagmap import TagMap
from adapters.sparkplug.topics import parse, rebirth_topic
from adapters.sparkplug.transport import SparkplugTransport
from config.sources.sparkplug import NAMESPACE, SparkplugSource

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000  # messages between paho's thread and us: QoS 0 past the broker's queue is lost
MAX_BATCH = 500  # messages per sink call
MAX_INFLIGHT = 4  # sink calls under way at once


class _Batch(NamedTuple):
    readings: list[Reading]
    malformed: list[Malformed]


class SparkplugAdapter:
    """Reads every edge node the source's tags name, as a Sparkplug host application."""

    def __init__(
        self,
        source: SparkplugSource,
        sink: ReadingSink,
        *,
        queue_size: int = QUEUE_SIZE,
        max_batch: int = MAX_BATCH,
        max_inflight: int = MAX_INFLIGHT,
        malformed: MalformedSink | None = None,
    ) -> None:
        self.source = source
        self.status = SourceStatus(source=source.name, protocol="sparkplug")
        self._sink = sink
        self._malformed = malformed
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._transport = SparkplugTransport(source, self.status, queue_size)
        self.sessions = Sessions(
            TagMap(source),
            rebirth_wait_s=source.rebirth_wait_s,
            reorder_timeout_s=source.reorder_timeout_s,
            store_transient=source.store_transient,
        )
        self._backoff = Backoff(source.reconnect_min_s, source.reconnect_max_s)
        self._failures = FailureLog(log, source.name)
        self._warned: set[str] = set()  # topics whose malformed payload was logged at WARNING
        self._stop = asyncio.Event()
        self._running = False
        self._done = asyncio.Event()
        self.status.extra.update(self.sessions.counts)
        self.status.extra.update(rebirths_sent=0)

    async def run(self) -> None:
        """Connect, deliver, until stop(); never raises for broker or sink trouble."""
        self._running = True
        self._done.clear()
        transport = self._transport
        inflight: deque[tuple[asyncio.Task[None], list[Message]]] = deque()
        try:
            if not await transport.open(self._stop):
                return
            transport.start()
            await self._consume(inflight)
            await transport.disconnect()  # nothing arrives any more: store what did
            rest = transport.drain()
            if rest:
                self._hand_over(*self._decode(rest), rest, inflight)
            while inflight:
                await self._settle(inflight.popleft())
        finally:
            for task, _ in inflight:
                task.cancel()
            await transport.disconnect()
            transport.drain()
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        """Store what was handed over, publish our STATE death (primary host), disconnect."""
        self._stop.set()
        if self._running:
            self._transport.wake()
            await self._done.wait()

    # -- decoding ------------------------------------------------------------------------------

    def _decode(self, messages: Sequence[Message]) -> tuple[list[Reading], list[Malformed]]:
        """Apply each message to its node's session, in order; ask for Rebirths it calls for."""
        readings: list[Reading] = []
        malformed: list[Malformed] = []
        sessions, state_topic = self.sessions, self._transport.state_topic
        for m in messages:
            if m.topic == state_topic:
                if says_offline(m.payload):
                    self._transport.publish_birth()
                continue
            try:
                topic = parse(m.topic)
            except DecodeError:
                if not m.topic.startswith(f"{NAMESPACE}/STATE/"):  # other hosts' STATE
                    sessions.counts["unmatched"] += 1
                continue
            try:
                payload = decode(m.payload)
            except DecodeError as exc:
                malformed.append(
                    Malformed(self.source.name, m.topic, m.arrived, m.payload, str(exc))
                )
                continue
            outcome = sessions.apply(topic, payload, m.arrived)
            readings += outcome.readings
            if outcome.rebirth is not None and self.source.send_rebirth:
                self._rebirth(topic.group, topic.edge, outcome.rebirth)
        self._reorder_expired()
        if malformed:
            self.status.malformed += len(malformed)
            for bad in malformed:  # WARNING once per topic, then DEBUG: a broken sender
                level = logging.DEBUG if bad.address in self._warned else logging.WARNING
                self._warned.add(bad.address)
                log.log(level, "%s: %s quarantined: %s", self.source.name, bad.address, bad.reason)
        return readings, malformed

    def _reorder_wait(self) -> float | None:
        """Seconds until the earliest seq gap's reorder timeout runs out; None: no gap."""
        due = self.sessions.next_due()
        if due is None:
            return None
        return max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds())

    def _reorder_expired(self) -> None:
        """Ask the nodes whose missing messages did not come in time for a Rebirth."""
        if self._reorder_wait() != 0.0:
            return
        for group, edge, reason in self.sessions.due(dt.datetime.now(dt.UTC)):
            if self.source.send_rebirth:
                self._rebirth(group, edge, reason)

    def _rebirth(self, group: str, edge: str, reason: str) -> None:
        topic = rebirth_topic(group, edge)
        if self._transport.publish(topic, encode_rebirth(time.time_ns() // 1_000_000)):
            self.status.extra["rebirths_sent"] += 1
            log.info("%s: asked %s/%s to rebirth: %s", self.source.name, group, edge, reason)

    # -- delivery ------------------------------------------------------------------------------

    async def _deliver(self, batch: _Batch) -> None:
        """Store the batch, retrying after a backoff until it is stored or the source stops."""
        while True:
            try:
                if batch.malformed and self._malformed is not None:
                    await self._malformed(batch.malformed)
                    batch = batch._replace(malformed=[])
                if batch.readings:
                    await self._sink(batch.readings)
            except Exception as exc:
                self.status.errors += 1
                self.status.last_error = f"sink failed: {exc!r}"
                self._failures.failed("sink", f"{exc!r} ({len(batch.readings)} readings kept)")
                if self._stop.is_set():
                    log.error(
                        "%s: sink failed at stop; %d reading(s) not stored: %r",
                        self.source.name,
                        len(batch.readings),
                        exc,
                    )
                    raise
                await pause(self._stop, self._backoff.next())
                continue
            self._backoff.reset()
            self._failures.recovered("sink")
            if batch.readings:
                self.status.readings += len(batch.readings)
                self.status.last_reading = dt.datetime.now(dt.UTC)
            return

    async def _consume(self, inflight: deque[tuple[asyncio.Task[None], list[Message]]]) -> None:
        """Decode and hand over batches until stop; settle sink calls as they finish; mark every
        metric BAD when the broker connection drops."""
        transport = self._transport
        getter: asyncio.Future[Message | None] | None = None
        lost: asyncio.Future[Any] | None = None
        try:
            while True:
                if getter is None and transport.queued and not transport.lost.is_set():
                    # more arrived meanwhile: take it without a round through the event loop
                    messages, woken = transport.take(self._max_batch)
                    if messages:
                        self._hand_over(*self._decode(messages), messages, inflight)
                    while len(inflight) >= self._max_inflight:
                        await self._settle(inflight.popleft())
                    if woken:
                        return
                    continue
                getter = getter or asyncio.ensure_future(transport.get())
                lost = lost or asyncio.ensure_future(transport.lost.wait())
                waits: set[asyncio.Future[Any]] = {getter, lost}
                if inflight:
                    waits.add(inflight[0][0])
                await asyncio.wait(
                    waits, timeout=self._reorder_wait(), return_when=asyncio.FIRST_COMPLETED
                )
                self._reorder_expired()
                while inflight and inflight[0][0].done():
                    await self._settle(inflight.popleft())
                if lost.done():
                    lost = None
                    transport.lost.clear()
                    self._hand_over(self.sessions.lost(transport.lost_at), [], [], inflight)
                if not getter.done():
                    continue
                first, getter = getter.result(), None
                messages, woken = transport.take(self._max_batch, first)
                if messages:
                    self._hand_over(*self._decode(messages), messages, inflight)
                while len(inflight) >= self._max_inflight:
                    await self._settle(inflight.popleft())
                if first is None or woken:
                    return
        finally:
            for waiter in (getter, lost):
                if waiter is not None:
                    waiter.cancel()

    def _hand_over(
        self,
        readings: list[Reading],
        malformed: list[Malformed],
        messages: list[Message],
        inflight: deque[tuple[asyncio.Task[None], list[Message]]],
    ) -> None:
        self.status.extra.update(self.sessions.counts)
        if readings or malformed or messages:
            batch = _Batch(readings, malformed)
            inflight.append((asyncio.create_task(self._deliver(batch)), messages))

    async def _settle(self, call: tuple[asyncio.Task[None], list[Message]]) -> None:
        """Wait for a sink call; acknowledge its messages if it stored them."""
        task, messages = call
        try:
            await task
        except Exception:
            return  # logged by _deliver; not acknowledged
        generation = self._transport.generation
        self._transport.ack(m for m in messages if m.qos and m.generation == generation)
