"""The MQTT adapter: the transport's messages, decoded, to the sinks; acks as the ledger allows.

Batches of up to `max_batch` messages are decoded while up to `max_inflight` earlier ones are
stored. Malformed messages go to the `malformed` sink first, as durably as readings, and are
acknowledged like the others: quarantined once, never redelivered forever. After a failed call
the session is reconnected (the broker redelivers QoS 1 only on a new connection), after a
backoff that doubles with each failure in a row. The whole story: docs/adapters/mqtt.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from adapters.base import MalformedSink, ReadingSink, SourceStatus
from adapters.mqtt.decoding import Decoded, MessageDecoder
from adapters.mqtt.ledger import Batch, Failure, Ledger
from adapters.mqtt.topics import shared, subscription_filters, template_filter
from adapters.mqtt.transport import Message, MqttTransport
from adapters.reconnect import Backoff, FailureLog, pause
from config.sources.mqtt import MqttSource

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # messages between the paho thread and the sink
MAX_BATCH = 500  # readings' messages per sink call
MAX_INFLIGHT = 4  # sink calls under way at once: the next batch is decoded while others commit


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
        self.source = source
        self.status = SourceStatus(source=source.name, protocol="mqtt")
        self._sink = sink
        self._malformed = malformed
        filters = subscription_filters([template_filter(t.topic) for t in source.tags])
        self._filters = shared(filters, source.shared_group)
        self._decode = MessageDecoder(source, self.status)
        self._ledger = Ledger(max_inflight=max_inflight, max_batch=max_batch)
        self._transport = MqttTransport(source, self._filters, self.status, queue_size)
        self._backoff = Backoff(source.reconnect_min_s, source.reconnect_max_s)  # resyncs
        self._failures = FailureLog(log, source.name)  # the sink's
        self._stop = asyncio.Event()
        self._running = False
        self._done = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, deliver, reconnect; return after stop(). Never raises for broker trouble."""
        self._running = True
        self._done.clear()
        transport = self._transport
        try:
            if not await transport.open(self._stop):
                return  # stopped before the TLS files could be loaded
            transport.start()
            while not self._stop.is_set():
                if await self._consume() or self._stop.is_set():
                    break
                await self._resync()
            await transport.disconnect()  # nothing arrives any more
            await self._store_unrepeatable()
        finally:
            await transport.disconnect()
            transport.drain()  # not acknowledged: the broker sends QoS 1 and 2 again
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        """Let the sink calls under way finish (acks as they allow), disconnect and return."""
        self._stop.set()
        if self._running:
            self._transport.wake()
            await self._done.wait()

    # -- delivery ------------------------------------------------------------------------------

    async def _consume(self) -> bool:
        """Deliver batches until stop (True) or a failed sink call (False).

        Up to `max_inflight` sink calls run at once, started in arrival order, so decoding the
        next batch overlaps the commit of the earlier ones. After a failure nothing is started
        any more; the calls under way finish and the ledger settles what is kept.
        """
        ledger, transport = self._ledger, self._transport
        calls: dict[asyncio.Future[None], Batch] = {}
        getter: asyncio.Future[Message | None] | None = None
        first: Message | None = None  # taken from the queue by `getter`, not yet handed over
        stopping = False
        try:
            while True:
                self._returned(calls)
                if ledger.failed:
                    break
                stopping = stopping or self._stop.is_set()
                if stopping and not ledger.inflight:
                    return True
                room = not stopping and ledger.room
                if room and (ledger.retry or first is not None or transport.queued):
                    if ledger.retry:  # `first` is None: awaited only once no retry was left
                        messages, stop = ledger.next_retry(), False
                    else:
                        messages, stop = transport.take(ledger.max_batch, first)
                    first = None
                    stopping = stopping or stop
                    if messages:
                        self._hand_over(messages, calls)
                    continue
                waits: set[asyncio.Future[Any]] = set(calls)
                if room:
                    if getter is None:
                        getter = asyncio.ensure_future(transport.get())
                    waits.add(getter)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if getter is not None and getter.done():
                    first, getter = getter.result(), None
                    stopping = stopping or first is None  # woken for stop
            if calls:
                await asyncio.wait(calls)  # they may be storing: wait, then ack what is certain
            self._returned(calls)
            self._sink_failed(ledger.settle())
            return False
        finally:
            if first is not None:  # stopped or failed before it was used
                ledger.keep([first])
            if getter is not None and not getter.cancel() and not getter.cancelled():
                item = getter.result()  # got an item while we were leaving: keep it
                if item is not None:
                    ledger.keep([item])
            for call in calls:  # only when cancelled or broken: unacknowledged, so they
                call.cancel()  # come again (QoS 1 and 2 released by the broker excepted)
            ledger.inflight.clear()

    def _hand_over(self, messages: list[Message], calls: dict[asyncio.Future[None], Batch]) -> None:
        """Decode and start the sink call; messages already `stored` only wait for their ack."""
        decoded = self._decode([m for m in messages if not m.stored])
        calling = bool(decoded.readings or (decoded.malformed and self._malformed is not None))
        batch = self._ledger.open(messages, len(decoded.readings), call=calling)
        if calling:
            calls[asyncio.ensure_future(self._deliver(decoded))] = batch

    async def _deliver(self, decoded: Decoded) -> None:
        """One batch's quarantined messages, then its readings: both durable before the ack."""
        if decoded.malformed and self._malformed is not None:
            await self._malformed(decoded.malformed)
        if decoded.readings:
            await self._sink(decoded.readings)

    def _returned(self, calls: dict[asyncio.Future[None], Batch]) -> None:
        """Tell the ledger which calls returned, then acknowledge what it allows, in order."""
        for call in [c for c in calls if c.done()]:
            error = asyncio.CancelledError("sink call cancelled") if call.cancelled() else None
            self._ledger.finish(calls.pop(call), error or call.exception())
        for batch in self._ledger.acknowledged():
            self._backoff.reset()
            self._failures.recovered("sink")
            self._delivered(batch.readings)
            self._ack(batch.messages)

    def _ack(self, batch: Sequence[Message]) -> None:
        self._transport.ack(self._ledger.acks(batch, self._transport.generation))

    def _sink_failed(self, failure: Failure) -> None:
        self._delivered(failure.stored)
        errors = failure.errors
        self.status.errors += len(errors)
        self.status.last_error = f"sink failed: {errors[0]!r}"
        self._failures.failed(
            "sink",
            f"{errors[0]!r} ({len(errors)} of {failure.batches} call(s), {failure.messages} "
            "message(s) not acknowledged)",
        )

    async def _resync(self) -> None:
        """After a failed sink call: reconnect the session so the broker redelivers QoS 1.

        Kept QoS 2 messages are acknowledged (PUBCOMP) once their retry succeeded: that must go
        on the new connection, since paho's reconnect() drops packets queued before it."""
        await self._transport.disconnect()
        self._ledger.keep(self._transport.drain())
        await pause(self._stop, self._backoff.next())
        if not self._stop.is_set():
            self._transport.start()
            await self._transport.wait_connected(self._stop)

    async def _store_unrepeatable(self) -> None:
        """At stop: QoS 0 and 2 messages still held that the broker will not send again (queued,
        or of a failed call) go to the sink once more, in order. Their PUBCOMP cannot go out now;
        the broker repeats its PUBREL on the next session and gets it then. QoS 1 is left to the
        broker's redelivery, as on every path."""
        held = self._ledger.unrepeatable(self._transport.drain())
        for start in range(0, len(held), self._ledger.max_batch):
            decoded = self._decode(held[start : start + self._ledger.max_batch])
            try:
                await self._deliver(decoded)
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
            self._delivered(len(decoded.readings))

    def _delivered(self, readings: int) -> None:
        if readings:
            self.status.readings += readings
            self.status.last_reading = dt.datetime.now(dt.UTC)
