"""What a broker carries, to write an MQTT tag map: topics, message counts and JSON fields.

`TopicLog` is pure: it sorts each payload the way the adapter will read it (payload.py) and
keeps, per topic, the dot paths of a JSON payload's values (what a tag's `field` takes) with
their JSON types and the last value. `listen` subscribes through the adapter's own transport
(same connection, TLS and login options) with QoS 0 and a clean session: it only reads, and
leaves no session behind on the broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from adapters.base import SourceStatus
from adapters.errors import DecodeError, TransportError
from adapters.mqtt.payload import parse_json
from adapters.mqtt.transport import MqttTransport
from adapters.reconnect import pause
from config.sources.mqtt import MqttSource

MAX_LIST_ITEMS = 8  # items of a JSON list listed as fields (`a.0` .. `a.7`)
MAX_FIELDS = 500  # fields kept per topic: a guard against payloads with generated keys
MAX_DEPTH = 32  # JSON levels followed
QUEUE_SIZE = 1000

# How a payload reads, as the adapter reads it: a JSON object or list has fields; a JSON
# scalar or other UTF-8 text is one plain value (a tag without `field`).
JSON_FIELDS, PLAIN, BINARY, EMPTY = "json", "plain", "binary", "empty"


@dataclass
class FieldSeen:
    messages: int = 0
    types: list[str] = field(default_factory=list)  # JSON types, in the order first seen
    sample: Any = None  # the last value


@dataclass
class TopicSeen:
    messages: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # JSON_FIELDS, PLAIN, ...
    plain_types: list[str] = field(default_factory=list)  # of PLAIN payloads
    sample: str | None = None  # the last PLAIN payload, as text
    fields: dict[str, FieldSeen] = field(default_factory=dict)
    fields_left_out: int = 0  # beyond MAX_FIELDS


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else type(value).__name__


def leaves(doc: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(dot path, value) of every value in a JSON object or list, as `field` addresses it.

    Keys holding a `.` are left out (a dot path cannot name them), and so are empty objects
    and lists (no value to read)."""
    if depth >= MAX_DEPTH:
        return
    if isinstance(doc, dict):
        items: Iterator[tuple[str, Any]] = ((k, v) for k, v in doc.items() if "." not in k)
    else:
        items = ((str(i), v) for i, v in enumerate(doc[:MAX_LIST_ITEMS]))
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict | list):
            yield from leaves(value, path, depth + 1)
        else:
            yield path, value


class TopicLog:
    """Topics seen, each with its message count and what its payloads hold."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicSeen] = {}
        self.messages = 0

    def add(self, topic: str, payload: bytes) -> None:
        seen = self.topics.setdefault(topic, TopicSeen())
        seen.messages += 1
        self.messages += 1
        if not payload.strip():
            seen.kinds[EMPTY] += 1
            return
        try:
            doc = parse_json(payload)
        except DecodeError:
            try:
                text = payload.decode("utf-8").strip()
            except UnicodeDecodeError:
                seen.kinds[BINARY] += 1
                return
            self._plain(seen, "text", text)
            return
        if not isinstance(doc, dict | list):
            self._plain(seen, json_type(doc), payload.decode("utf-8").strip())
            return
        seen.kinds[JSON_FIELDS] += 1
        for path, value in leaves(doc):
            found = seen.fields.get(path)
            if found is None:
                if len(seen.fields) >= MAX_FIELDS:
                    seen.fields_left_out += 1
                    continue
                found = seen.fields[path] = FieldSeen()
            found.messages += 1
            kind = json_type(value)
            if kind not in found.types:
                found.types.append(kind)
            found.sample = value

    @staticmethod
    def _plain(seen: TopicSeen, kind: str, text: str) -> None:
        seen.kinds[PLAIN] += 1
        if kind not in seen.plain_types:
            seen.plain_types.append(kind)
        seen.sample = text


def listener_source(
    source: dict[str, Any], topic_filter: str, client_id: str | None = None
) -> MqttSource:
    """The source model the transport needs, from connection options (host, port, username,
    tls, ...): QoS 0 (nothing to acknowledge) and a clean session that ends with us. Its one
    tag only carries the filter (validated as the config validates a topic)."""
    return MqttSource.model_validate(
        {
            **source,
            "protocol": "mqtt",
            "name": "listen",
            "client_id": client_id or f"shopfloor-listen-{uuid.uuid4().hex[:12]}",
            "qos": 0,
            "clean_start": True,
            "session_expiry_s": 0,
            "tags": [{"machine": "listen", "name": "listen", "topic": topic_filter}],
        }
    )


async def listen(
    source: MqttSource,
    seconds: float,
    connect_timeout_s: float,
    *,
    log: TopicLog | None = None,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[], None] | None = None,
) -> TopicLog:
    """Every message on the source's filter for `seconds` from the moment the broker accepted
    us (then `on_listening` is called), or until `stop`, added to `log` as it arrives.

    TransportError at the first failed connect (with the broker's answer), or when none
    succeeded within `connect_timeout_s`: a command reports and ends, it does not retry the
    way the adapter does."""
    log = TopicLog() if log is None else log
    status = SourceStatus(source.name, "mqtt")
    transport = MqttTransport(source, [source.tags[0].topic_filter], status, QUEUE_SIZE)
    given_up = asyncio.Event()
    timer = asyncio.get_running_loop().call_later(connect_timeout_s, given_up.set)
    ender: asyncio.Task[None] | None = None
    try:
        if await transport.open(given_up):
            transport.start()
            while not (status.connected or status.errors or given_up.is_set()):
                await pause(given_up, 0.05)
        timer.cancel()
        if not status.connected:
            raise TransportError(
                status.last_error
                or f"no answer from {source.host}:{source.port} within {connect_timeout_s:g} s"
            )
        ender = asyncio.create_task(_wake_after(transport, stop or asyncio.Event(), seconds))
        if on_listening is not None:
            on_listening()
        while (message := await transport.get()) is not None:
            log.add(message.topic, message.payload)
    finally:
        timer.cancel()
        if ender is not None:
            ender.cancel()
        await transport.disconnect()
    for message in transport.drain():  # arrived before the end, not taken yet
        log.add(message.topic, message.payload)
    return log


async def _wake_after(transport: MqttTransport, stop: asyncio.Event, seconds: float) -> None:
    await pause(stop, seconds)
    transport.wake()
