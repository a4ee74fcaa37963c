"""The OPC UA adapter: a subscription (or polling) per session, reconnect with backoff.

Every session resolves every tag's node again (namespace URIs and browse paths may change when a
server restarts). asyncua calls the subscription handler from its own tasks: it only converts and
puts the reading into a bounded queue (never awaiting), and one task hands batches to the sink.
When the queue is full the oldest reading is dropped and counted: blocking asyncua's publish loop
instead would stall the session. The whole story: docs/adapters/opcua.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState

from adapters.base import Reading, ReadingSink, SourceStatus
from adapters.errors import ConfigurationError, DecodeError, TransportError
from adapters.opcua.connection import ConnectionOptions, session, translate
from adapters.opcua.nodeid import BrowsePath, NodeRef, parse_node, to_relative_path, to_ua_nodeid
from adapters.opcua.values import from_datavalue, status_code, status_name
from adapters.reconnect import Backoff, FailureLog, pause
from config.sources.opcua import OpcUaSource, OpcUaTag

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000  # readings between asyncua's callbacks and the sink
MAX_BATCH = 500
_DEADBAND = {"absolute": ua.DeadbandType.Absolute, "percent": ua.DeadbandType.Percent}
# Read results that say the node itself cannot be read (not that its value is bad): polling
# stores no reading for them, as subscription mode has none for a refused monitored item.
_UNREADABLE = frozenset(
    {
        ua.StatusCodes.BadNodeIdUnknown,
        ua.StatusCodes.BadNodeIdInvalid,
        ua.StatusCodes.BadAttributeIdInvalid,
        ua.StatusCodes.BadNotReadable,
        ua.StatusCodes.BadUserAccessDenied,
    }
)


class Node(NamedTuple):
    """A tag and the node id the server knows it by in this session."""

    tag: OpcUaTag
    nodeid: ua.NodeId


class _SessionLost(TransportError):
    """The server went away or ended the subscription."""


class _Handler:
    """asyncua's subscription handler: convert and enqueue, never block."""

    def __init__(
        self, adapter: OpcUaAdapter, tags: dict[int, OpcUaTag], lost: asyncio.Event
    ) -> None:
        self._adapter = adapter
        self._tags = tags
        self._lost = lost  # this session's: a late call cannot end the next session

    def datachange_notification(self, _node: Any, _val: Any, data: Any) -> None:
        tag = self._tags.get(data.subscription_data.client_handle)
        dv = data.monitored_item.Value
        if tag is not None and self._adapter._readable(tag, dv, "reported"):
            self._adapter._emit(tag, dv)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        code = status.Status
        if not code.is_good():
            self._adapter._lost_reason = f"subscription status {status_name(code)}"
            self._lost.set()


class OpcUaAdapter:
    """Delivers the source's tags as readings; `run()` until `stop()`."""

    def __init__(
        self,
        source: OpcUaSource,
        sink: ReadingSink,
        *,
        queue_size: int = QUEUE_SIZE,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.source = source
        self._sink = sink
        self._opts = ConnectionOptions.from_source(source)
        self.status = SourceStatus(source=source.name, protocol="opcua")
        self.status.extra.update(overflow=0, bad_nodes=0)
        self._queue_size = queue_size
        self._max_batch = max_batch
        # One monitored item (or Read) per reading address: tags that share it stand for it
        # by the first of them, and the collector gives its readings to each.
        self._refs: list[tuple[OpcUaTag, NodeRef | BrowsePath]] = []
        addresses: set[str] = set()
        for tag in source.tags:
            if tag.reading_address in addresses:
                continue
            addresses.add(tag.reading_address)
            try:
                self._refs.append((tag, parse_node(tag.node)))
            except ConfigurationError as exc:
                self.status.extra["bad_nodes"] += 1
                log.error("%s: tag %s skipped: %s", source.name, tag.key, exc)
        self._queue: asyncio.Queue[Reading | None] | None = None
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self._failures = FailureLog(log, source.name)
        self._sessions = 0
        self._warned_tags: set[str] = set()
        self._unreadable: set[str] = set()  # tags whose last value was Bad
        self._overflowing = False
        self._session_ok = False
        self._running = False
        self._done = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Sessions one after another until stop(); never raises for server trouble."""
        self._running = True
        self._done.clear()
        self._queue = asyncio.Queue(self._queue_size)
        consumer = asyncio.create_task(self._deliver(), name=f"opcua-{self.source.name}-sink")
        backoff = Backoff(self.source.reconnect_min_s, self.source.reconnect_max_s)
        try:
            while not self._stop.is_set():
                try:
                    await self._session_until_stop()
                    backoff.reset()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    err = translate(exc, self.source.name)
                    self.status.errors += 1
                    self.status.last_error = str(err)
                    hint = "" if err.retriable else " (check the configuration)"
                    self._failures.failed("session", f"{err}{hint}")
                    if self._session_ok:  # it worked a while: start the backoff over
                        backoff.reset()
                self.status.connected = False
                if self._stop.is_set():
                    break
                await pause(self._stop, backoff.next())
        finally:
            self._stop.set()  # also when cancelled: the consumer must not retry forever
            self.status.connected = False
            await self._queue.put(None)  # after the last reading: flush, then end
            await consumer
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        """End the session, deliver the readings in hand, return once run() has finished."""
        self._stop.set()
        if self._running:
            await self._done.wait()

    # -- one session ---------------------------------------------------------------------------

    async def _session_until_stop(self) -> None:
        """One session; stop() also ends it while it is still connecting (up to 3 timeouts)."""
        task = asyncio.create_task(self._one_session())
        stop = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():  # stop() came first: a connected session ends by itself
                await asyncio.wait({task}, timeout=self.source.timeout_s)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return
            task.result()
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()

    async def _one_session(self) -> None:
        lost = self._lost = asyncio.Event()
        self._session_ok = False

        async def on_lost(exc: Exception) -> None:
            self._lost_reason = f"connection lost: {exc!r}"
            lost.set()

        async with session(self._opts, on_lost=on_lost) as client:
            nodes = await self._resolve(client)
            self._sessions += 1
            if self._sessions > 1:
                self.status.reconnects += 1
            self.status.connected = True
            self._session_ok = True
            detail = f"connected to {self.source.endpoint} ({len(nodes)} nodes, {self.source.mode})"
            self._failures.connected("session", detail)
            if self.source.mode == "subscription":
                await self._subscribe(client, nodes)
                await self._wait_lost(client)
            else:
                await self._poll(client, nodes)
            if self._lost.is_set() and not self._stop.is_set():
                raise _SessionLost(self._lost_reason or "session lost", source=self.source.name)

    async def _wait_lost(self, client: Client) -> None:
        """Until the session is lost or stop(); also checks the client's own state."""
        while not (self._stop.is_set() or self._lost.is_set()):
            if client.uaclient.state is not UaClientState.CONNECTED:
                self._lost_reason = f"client state {client.uaclient.state.value}"
                self._lost.set()
                break
            stop = asyncio.ensure_future(self._stop.wait())
            lost = asyncio.ensure_future(self._lost.wait())
            try:
                await asyncio.wait({stop, lost}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                lost.cancel()

    async def _resolve(self, client: Client) -> dict[int, Node]:
        """Client handle -> (tag, node id) for every tag whose node the server knows."""
        namespaces = None
        if any(isinstance(r, NodeRef) and r.namespace_uri for _, r in self._refs):
            namespaces = await client.get_namespace_array()
        resolved: dict[int, Node] = {}
        paths = [
            (i, tag, ref) for i, (tag, ref) in enumerate(self._refs) if isinstance(ref, BrowsePath)
        ]
        if paths:
            results = await client.translate_browsepaths(
                client.nodes.root.nodeid, [to_relative_path(p) for _, _, p in paths]
            )
            for (i, tag, path), result in zip(paths, results, strict=True):
                if not result.StatusCode.is_good() or not result.Targets:
                    name = status_name(result.StatusCode)
                    self._bad_node(tag, f"browse path {path} not found ({name})")
                    continue
                target = result.Targets[0].TargetId
                resolved[i + 1] = Node(
                    tag, ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType)
                )
        for i, (tag, ref) in enumerate(self._refs):
            if isinstance(ref, NodeRef):
                try:
                    resolved[i + 1] = Node(tag, to_ua_nodeid(ref, namespaces))
                except ConfigurationError as exc:
                    self._bad_node(tag, str(exc))
        return dict(sorted(resolved.items()))

    def _bad_node(self, tag: OpcUaTag, message: str) -> None:
        """A node the server does not know or cannot read: counted, WARNING the first time."""
        self.status.errors += 1
        self.status.last_error = f"{tag.node}: {message}"
        level = logging.DEBUG if tag.key in self._warned_tags else logging.WARNING
        log.log(level, "%s: tag %s (%s): %s", self.source.name, tag.key, tag.node, message)
        self._warned_tags.add(tag.key)

    async def _subscribe(self, client: Client, nodes: dict[int, Node]) -> None:
        src = self.source
        handler = _Handler(self, {h: tag for h, (tag, _) in nodes.items()}, self._lost)
        sub = await client.create_subscription(src.publishing_interval_ms, handler)
        requests = [self._monitored_item(h, tag, nodeid) for h, (tag, nodeid) in nodes.items()]
        if not requests:
            return
        results = await sub.create_monitored_items(requests)
        for (tag, _), result in zip(nodes.values(), results, strict=True):
            if isinstance(result, ua.StatusCode):
                self._bad_node(tag, f"monitored item refused: {status_name(result)}")

    def _monitored_item(
        self, handle: int, tag: OpcUaTag, nodeid: ua.NodeId
    ) -> ua.MonitoredItemCreateRequest:
        src = self.source
        params = ua.MonitoringParameters()
        params.ClientHandle = handle
        params.SamplingInterval = src.sampling_interval_ms
        params.QueueSize = src.queue_size
        params.DiscardOldest = True
        if tag.deadband_type is not None:
            flt = ua.DataChangeFilter()
            flt.Trigger = ua.DataChangeTrigger.StatusValue
            flt.DeadbandType = _DEADBAND[tag.deadband_type]
            flt.DeadbandValue = float(tag.deadband_value or 0.0)
            params.Filter = flt
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=_value_of(nodeid),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=params,
        )

    async def _poll(self, client: Client, nodes: dict[int, Node]) -> None:
        """One Read of every tag per poll_interval_s, until lost or stopped."""
        params = ua.ReadParameters(
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            NodesToRead=[_value_of(nodeid) for _, nodeid in nodes.values()],
        )
        tags = [tag for tag, _ in nodes.values()]
        loop = asyncio.get_running_loop()
        next_poll = loop.time()
        while not (self._stop.is_set() or self._lost.is_set()):
            if tags:
                sent = dt.datetime.now(dt.UTC)  # `timestamp: collector` stamps with this
                results = await asyncio.wait_for(
                    client.uaclient.read(params), self.source.timeout_s
                )
                for tag, dv in zip(tags, results, strict=True):
                    if self._readable(tag, dv):
                        self._emit(tag, dv, sent)
            next_poll += self.source.poll_interval_s
            next_poll = max(next_poll, loop.time())  # a slow read skips polls, never bursts
            await pause(self._stop, next_poll - loop.time())

    def _readable(self, tag: OpcUaTag, dv: ua.DataValue, how: str = "read returned") -> bool:
        """A tag whose value turns Bad (a Read, or a notification: `how`) is counted and logged
        once (WARNING), and once (INFO) when it reads again; False when the node itself cannot
        be read (no reading). A Bad value of a readable node is stored, as Bad."""
        code = status_code(dv)
        if code & 0x80000000:  # severity Bad (and the reserved 11)
            if tag.key not in self._unreadable:  # not on every poll, nor again after reconnect
                self._unreadable.add(tag.key)
                self._bad_node(tag, f"{how} {status_name(code)}")
        elif tag.key in self._unreadable:
            self._unreadable.discard(tag.key)
            self._warned_tags.discard(tag.key)  # a later failure is a new WARNING
            log.info(
                "%s: tag %s (%s) read again: %s",
                self.source.name,
                tag.key,
                tag.node,
                status_name(code),
            )
        return code not in _UNREADABLE

    # -- readings ------------------------------------------------------------------------------

    def _emit(self, tag: OpcUaTag, dv: ua.DataValue, now: dt.datetime | None = None) -> None:
        now = now or dt.datetime.now(dt.UTC)
        try:
            stamp = tag.timestamp or self.source.timestamp
            value, text, quality, ts = from_datavalue(dv, stamp, now)
        except DecodeError as exc:
            self.status.malformed += 1
            level = logging.DEBUG if tag.key in self._warned_tags else logging.WARNING
            log.log(level, "%s: tag %s (%s) skipped: %s", self.source.name, tag.key, tag.node, exc)
            self._warned_tags.add(tag.key)
            return
        reading = Reading(self.source.name, tag.reading_address, ts, value, quality, text)
        assert self._queue is not None
        try:
            self._queue.put_nowait(reading)
            self._overflowing = False
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(reading)
            self.status.extra["overflow"] += 1
            if not self._overflowing:
                log.warning(
                    "%s: the sink is behind, %d readings queued: dropping the oldest",
                    self.source.name,
                    self._queue_size,
                )
            self._overflowing = True

    async def _deliver(self) -> None:
        """Batches from the queue to the sink, in order; a failed batch is offered again."""
        assert self._queue is not None
        done = False
        while not done:
            item = await self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self._max_batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    done = True
                    break
                batch.append(nxt)
            await self._sink_with_retry(batch)

    async def _sink_with_retry(self, batch: Sequence[Reading]) -> None:
        backoff = Backoff(self.source.reconnect_min_s, self.source.reconnect_max_s)
        while True:
            try:
                await self._sink(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.status.errors += 1
                self.status.last_error = f"sink failed: {exc!r}"
                if self._stop.is_set():
                    log.error(
                        "%s: sink failed while stopping; %d readings lost: %r",
                        self.source.name,
                        len(batch),
                        exc,
                    )
                    return
                self._failures.failed("sink", f"{exc!r}; retrying {len(batch)} readings")
                await pause(self._stop, backoff.next())
                continue
            self._failures.recovered("sink")
            self.status.readings += len(batch)
            self.status.last_reading = dt.datetime.now(dt.UTC)
            return


def _value_of(nodeid: ua.NodeId) -> ua.ReadValueId:
    return ua.ReadValueId(NodeId=nodeid, AttributeId=ua.AttributeIds.Value)
