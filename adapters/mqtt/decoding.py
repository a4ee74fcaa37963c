"""MQTT messages to readings: each topic routed to its tags, each payload decoded for them.

A payload that cannot be decoded gives a `Malformed` record instead, counted in `status.malformed`
and logged with its topic: WARNING, then DEBUG until that topic decodes again (ERROR with the
traceback for a failure nobody foresaw). Unmatched topics count in `status.extra["unmatched"]`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, NamedTuple, cast

from adapters.base import Malformed, Reading, SourceStatus, good_readings
from adapters.errors import DecodeError
from adapters.mqtt.payload import Decoder, FieldSpec
from adapters.mqtt.topics import matches
from config.sources.mqtt import MqttSource

if TYPE_CHECKING:
    from adapters.mqtt.transport import Message

log = logging.getLogger(__name__)

MAX_ROUTES = 10_000  # topic names remembered: wildcard filters can see unbounded names


@dataclass(frozen=True, slots=True, kw_only=True)
class _TagPlan(FieldSpec):
    """How to read one tag from a message, computed once from its config."""

    index: int  # position in the source's tags: readings keep configuration order
    address: str  # the tag's reading_address


@dataclass(frozen=True, slots=True)
class _Route:
    """One topic name's tags (their addresses, in configuration order) and their decoder."""

    addresses: tuple[str, ...]
    decode: Decoder


class Decoded(NamedTuple):
    """A batch of messages as the sinks take it."""

    readings: list[Reading]
    malformed: list[Malformed]


class MessageDecoder:
    """The source's messages to readings; counts and logs in `status`."""

    def __init__(self, source: MqttSource, status: SourceStatus) -> None:
        self.source = source
        self.status = status
        status.extra["unmatched"] = 0
        # Each tag's decoding worked out once (its address and paths), not per reading.
        self._exact: dict[str, list[_TagPlan]] = {}  # filter without wildcards -> its tags
        self._wild: list[tuple[str, _TagPlan]] = []  # filters with + or #, matched per topic
        for i, tag in enumerate(source.tags):
            spec = (tag.field, tag.timestamp_field, tag.timestamp_format)
            plan = _TagPlan(*spec, index=i, address=tag.reading_address)
            if "+" in tag.topic_filter or "#" in tag.topic_filter:
                self._wild.append((tag.topic_filter, plan))
            else:
                self._exact.setdefault(tag.topic_filter, []).append(plan)
        self._routes: dict[str, _Route] = {}  # topic name -> its tags, filled lazily
        self._warned_topics: set[str] = set()

    def __call__(self, batch: Sequence[Message]) -> Decoded:
        readings: list[Reading] = []
        malformed: list[Malformed] = []
        for m in batch:
            route = self._route(m.topic)
            if not route.addresses:
                self.status.extra["unmatched"] += 1
                continue
            try:
                readings.extend(self._readings(m, route))
            except DecodeError as exc:
                malformed.append(self._quarantine(m, str(exc), None))
            except Exception as exc:  # a decoding path nobody foresaw: still only this message
                malformed.append(self._quarantine(m, f"cannot be decoded: {exc!r}", exc))
            else:
                self._warned_topics.discard(m.topic)
        return Decoded(readings, malformed)

    def _route(self, topic: str) -> _Route:
        route = self._routes.get(topic)
        if route is None:
            plans = list(self._exact.get(topic, ()))
            plans += [plan for f, plan in self._wild if matches(f, topic)]
            plans.sort(key=lambda p: p.index)  # configuration order, as before
            route = _Route(tuple(p.address for p in plans), Decoder(plans))
            if len(self._routes) < MAX_ROUTES:
                self._routes[topic] = route
        return route

    def _readings(self, m: Message, route: _Route) -> list[Reading]:
        """Every tag's reading from one message, or DecodeError: a message is used whole."""
        values, texts, stamps = route.decode(m.payload)  # one entry per address
        stamped: Iterable[dt.datetime]
        unstamped = stamps.count(None)  # values without a payload timestamp: arrival time
        if unstamped == len(stamps):
            stamped = repeat(m.arrived)
        elif unstamped:
            stamped = [m.arrived if ts is None else ts for ts in stamps]
        else:
            stamped = cast(list[dt.datetime], stamps)
        return good_readings(self.source.name, route.addresses, stamped, values, texts)

    def _quarantine(self, m: Message, reason: str, bug: Exception | None) -> Malformed:
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
