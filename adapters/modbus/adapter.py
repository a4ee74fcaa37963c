"""The Modbus adapter: one connection, one poller per cadence, readings to the sink.

Readings carry the time their request was sent (the device sampled its values after that, and a
poll that had to connect first does not date them back). Nothing is raised out of `run()`: an
exception response gives BAD readings, no response no reading this poll, and a merged request
refused with "illegal data address" is split into one per tag. Failures are logged by the
adapters' one policy (adapters/reconnect.py). The whole story: docs/adapters/modbus.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import struct
from collections import defaultdict
from itertools import repeat
from typing import NamedTuple

from adapters.base import Quality, Reading, ReadingSink, SourceStatus, good_readings
from adapters.errors import DecodeError, TransportError
from adapters.modbus.codec import Decoded, Response
from adapters.modbus.connection import (
    ConnectError,
    DeviceBusyError,
    IllegalRequestError,
    ModbusConnection,
    ModbusExceptionError,
)
from adapters.modbus.planner import ReadRequest, plan
from adapters.reconnect import FailureLog, pause
from config.sources.modbus import ModbusSource, ModbusTag

log = logging.getLogger(__name__)

ILLEGAL_DATA_ADDRESS = 2
STOP_GRACE_S = 5.0  # longest wait for a poll in progress to finish on stop()


class Answer(NamedTuple):
    """A request's response, waiting to be decoded."""

    request: ReadRequest
    data: Response
    sent: dt.datetime  # when the request went out: its readings' timestamp


class ModbusAdapter:
    """Polls one Modbus TCP source; see the module docstring for what it does on failures."""

    def __init__(self, source: ModbusSource, sink: ReadingSink) -> None:
        self.source = source
        self._sink = sink
        self.status = SourceStatus(source=source.name, protocol="modbus")
        self.status.extra.update(polls=0, timeouts=0, exception_responses=0, overruns=0)
        self._conn = ModbusConnection(source)
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False
        self._failures = FailureLog(log, source.name)
        # Requests by poll interval: one poller per cadence. Planned here so a tag map the
        # planner cannot serve fails at construction, not inside run().
        by_interval: dict[float, list[tuple[int, ModbusTag]]] = defaultdict(list)
        for tag in source.tags:
            unit = source.unit_of(tag)
            by_interval[source.poll_interval_of(unit)].append((unit, tag))
        self.schedule: dict[float, list[ReadRequest]] = {
            interval: plan(tags, max_gap=source.max_gap)
            for interval, tags in sorted(by_interval.items())
        }

    async def run(self) -> None:
        """Poll until stop(); never raises for device or network trouble."""
        self._running = True
        self._finished.clear()
        pollers = [
            asyncio.create_task(
                self._poller(interval, requests), name=f"modbus-{self.source.name}-{interval}s"
            )
            for interval, requests in self.schedule.items()
        ]
        try:
            await self._stopping.wait()
            _, pending = await asyncio.wait(pollers, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
        finally:
            for task in pollers:
                task.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)
            await self._conn.close()
            self.status.connected = False
            self._running = False
            self._finished.set()

    async def stop(self) -> None:
        """Let the poll in progress finish (up to STOP_GRACE_S), then close the connection."""
        self._stopping.set()
        if self._running:
            await self._finished.wait()

    async def _poller(self, interval: float, requests: list[ReadRequest]) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._stopping.is_set():
            try:
                await self._poll_once(requests)
            except Exception as exc:  # a bug must not end polling; logged in full, once
                self._count_error(exc)
                self._failures.failed("poll", exc, exc_info=True)
            else:
                self._failures.recovered("poll")
            next_at += interval
            now = loop.time()
            if next_at < now:  # the poll overran: skip the missed ticks, poll again at once
                self.status.extra["overruns"] += math.ceil((now - next_at) / interval)
                next_at = now  # the schedule restarts here: one poll, never a burst
            if next_at <= now:
                await asyncio.sleep(0)  # back to back: only let the other tasks run
                continue
            await pause(self._stopping, next_at - now)

    async def _poll_once(self, requests: list[ReadRequest]) -> None:
        self.status.extra["polls"] += 1
        readings: list[Reading] = []
        failed_units: set[int] = set()
        # Answers are decoded while the next request is on the wire, not between an answer and
        # the next request: the device's round trip hides our decoding instead of adding to it.
        loop = asyncio.get_running_loop()
        answered: list[Answer] = []

        def decode_answered() -> None:  # at most once per answer, in request order
            while answered:
                asked, data, ts = answered.pop(0)
                try:
                    readings.extend(self._decode(asked, data, ts))
                except Exception as exc:  # a bug, maybe run by the loop: counted and logged
                    self._count_error(exc)
                    self._failures.failed(_request_key(asked), exc, exc_info=True)

        i = 0
        while i < len(requests):
            request = requests[i]
            i += 1
            if self._stopping.is_set():
                break  # deliver what this poll has read so far, then end
            if request.unit_id in failed_units:
                continue
            if answered:
                loop.call_soon(decode_answered)  # runs once the read below has sent and waits
            try:
                data = await self._conn.read(
                    request.table, request.address, request.count, request.unit_id
                )
            except IllegalRequestError as exc:
                decode_answered()
                if exc.exception_code == ILLEGAL_DATA_ADDRESS and len(request.tags) > 1:
                    singles = self._split(request)
                    requests[i - 1 : i] = singles  # from now on, and for this poll too
                    i -= 1
                    continue
                self._exception_response(request, exc, readings)
                continue
            except DeviceBusyError as exc:
                decode_answered()
                self._exception_response(request, exc, readings)
                continue
            except TransportError as exc:
                self._transport_failure(request, exc)
                if isinstance(exc, ConnectError):
                    break  # no connection: the other units cannot be read either
                failed_units.add(request.unit_id)
                continue
            if self._failures.failing:
                src = self.source
                self._failures.recovered("connection", detail=f": {src.host}:{src.port} answers")
                self._failures.recovered(f"unit {request.unit_id}", _request_key(request))
            answered.append(Answer(request, data, self._conn.sent_at))
        decode_answered()
        self.status.connected = self._conn.connected
        self.status.reconnects = max(self._conn.connects - 1, 0)
        self.status.extra["timeouts"] = self._conn.timeouts
        if not readings:
            return
        self.status.readings += len(readings)
        self.status.last_reading = readings[-1].ts
        try:
            await self._sink(readings)
        except Exception as exc:  # the collector's trouble: these readings are lost; go on
            self._count_error(exc)
            self._failures.failed("sink", exc, exc_info=True)
        else:
            self._failures.recovered("sink")

    def _decode(self, request: ReadRequest, data: Response, ts: dt.datetime) -> list[Reading]:
        """The request's readings, in tag order: all tags at once by the request's plan."""
        try:
            decoded = request.decoder.decode(data)
        except (struct.error, DecodeError):  # short, or not 0..65535: each tag judges, as ever
            return self._decode_per_tag(request, data, ts)
        return self._readings(request, ts, decoded, request.decoder.checks_finite)

    def _decode_per_tag(
        self, request: ReadRequest, data: Response, ts: dt.datetime
    ) -> list[Reading]:
        """Tag by tag, each by its own plan: what fails to decode is counted and BAD."""
        values: list[float | None] = []
        texts: list[str | None] = []
        for i, tag in enumerate(request.tags):
            try:
                value, text = request.decoder.decode_tag(i, request.slice_for(tag, data))
            except DecodeError as exc:
                self._count_error(exc)
                log.debug("%s: %s: cannot decode: %s", self.source.name, tag.key, exc)
                value, text = math.nan, None  # BAD, as a value the device marks invalid
            values.append(value)
            texts.append(text)
        return self._readings(request, ts, Decoded(values, texts))

    def _readings(
        self, request: ReadRequest, ts: dt.datetime, decoded: Decoded, check: bool = True
    ) -> list[Reading]:
        """GOOD readings, except NaN or infinite values: BAD, without value ("no valid value")."""
        name, good = self.source.name, Quality.GOOD
        values, texts = decoded
        if texts is None and not check:
            return good_readings(name, request.addresses, repeat(ts), values)
        out: list[Reading] = []
        isfinite, bad = math.isfinite, Quality.BAD
        texts = texts if texts is not None else [None] * len(values)
        for address, value, text in zip(request.addresses, values, texts, strict=True):
            if value is not None and not isfinite(value):
                out.append(Reading(name, address, ts, None, bad, None))
            else:
                out.append(Reading(name, address, ts, value, good, text))
        return out

    def _split(self, request: ReadRequest) -> list[ReadRequest]:
        log.warning(
            "%s: unit %d refuses %s %d+%d (illegal data address); reading its %d tags one "
            "by one from now on (set max_gap: 0 to avoid this)",
            self.source.name,
            request.unit_id,
            request.table.value,
            request.address,
            request.count,
            len(request.tags),
        )
        return [
            ReadRequest(request.unit_id, request.table, tag.address, tag.register_count, (tag,))
            for tag in request.tags
        ]

    def _exception_response(
        self, request: ReadRequest, exc: ModbusExceptionError, readings: list[Reading]
    ) -> None:
        """An answer after all: stamped like a value, when the request was sent."""
        self.status.extra["exception_responses"] += 1
        self._count_error(exc)
        self._failures.failed(_request_key(request), exc)
        ts, bad = self._conn.sent_at, Quality.BAD
        readings.extend(
            Reading(self.source.name, a, ts, None, bad, None) for a in request.addresses
        )

    def _transport_failure(self, request: ReadRequest, exc: TransportError) -> None:
        self._count_error(exc)
        key = "connection" if isinstance(exc, ConnectError) else f"unit {request.unit_id}"
        self._failures.failed(key, exc)

    def _count_error(self, exc: Exception) -> None:
        self.status.errors += 1
        self.status.last_error = str(exc)


def _request_key(request: ReadRequest) -> str:
    return f"unit {request.unit_id} {request.table.value} {request.address}+{request.count}"
