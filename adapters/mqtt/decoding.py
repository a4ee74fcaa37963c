"""MQTT messages to readings: each topic routed to its tags, each payload decoded for them.

Each tag's field is read on its own. A field the payload lacks (gateways that publish only what
changed) is counted for its tag in `status.missing_fields` and logged at INFO the first time it
goes missing and the first time it comes back, at DEBUG after that. A message with any other
field that cannot be decoded (not JSON, a wrong type, a bad timestamp) also gives a `Malformed`
record, counted in `status.malformed` and logged with its topic: WARNING, then DEBUG until that
topic decodes again (ERROR with the traceback for a failure nobody foresaw); its other fields
still give readings. Unmatched topics count in `status.extra["unmatched"]`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import repeat
from typing import TYPE_CHECKING, NamedTuple, cast

from adapters.base import Malformed, Reading, SourceStatus, good_readings
from adapters.errors import DecodeError
from adapters.mqtt.payload import Decoder, FieldSpec, MissingField
from adapters.mqtt.topics import matches
from config.sources.mqtt import MqttSource

if TYPE_CHECKING:
    from adapters.mqtt.transport import Message

log = logging.getLogger(__name__)

MAX_ROUTES = 10_000  # topic names remembered: wildcard filters can see unbounded names
_GONE = "%s: tag %s: field %r missing on topic %r, counted in missing_fields%s"
_BACK = "%s: tag %s: field %r present again on topic %r%s"


@dataclass(frozen=True, slots=True, kw_only=True)
class _TagPlan(FieldSpec):
    """How to read one tag from a message, computed once from its config."""

    index: int  # position in the source's tags: readings keep configuration order
    address: str  # the tag's reading_address
    key: str  # the tag's key, machine.name: where its missing field is counted
    # Keys of the later tags with the same reading address: decoded once, by this plan; the
    # collector gives the reading to each, and a missing field is counted for each.
    shared: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *self.shared)


@dataclass(frozen=True, slots=True)
class _Route:
    """One topic name's tags (in configuration order), their addresses and their decoder."""

    plans: tuple[_TagPlan, ...]
    addresses: tuple[str, ...]
    keys: frozenset[str]
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
        by_address: dict[str, tuple[str, _TagPlan]] = {}  # one plan per reading address
        for i, tag in enumerate(source.tags):
            address = tag.reading_address
            known = by_address.get(address)
            if known is not None:
                first = known[1]
                by_address[address] = (known[0], replace(first, shared=(*first.shared, tag.key)))
                continue
            spec = (tag.field, tag.timestamp_field, tag.timestamp_format)
            plan = _TagPlan(*spec, index=i, address=address, key=tag.key)
            by_address[address] = (tag.topic_filter, plan)
        for topic_filter, plan in by_address.values():
            if "+" in topic_filter or "#" in topic_filter:
                self._wild.append((topic_filter, plan))
            else:
                self._exact.setdefault(topic_filter, []).append(plan)
        self._routes: dict[str, _Route] = {}  # topic name -> its tags, filled lazily
        self._warned_topics: set[str] = set()
        self._absent: set[str] = set()  # tags whose field the last message for them lacked
        self._told_absent: set[str] = set()  # logged at INFO: gone missing, once per tag
        self._told_back: set[str] = set()  # logged at INFO: seen again, once per tag

    def __call__(self, batch: Sequence[Message]) -> Decoded:
        readings: list[Reading] = []
        malformed: list[Malformed] = []
        for m in batch:
            route = self._route(m.topic)
            if not route.addresses:
                self.status.extra["unmatched"] += 1
                continue
            try:
                got, bad = self._readings(m, route)
            except Exception as exc:  # a decoding path nobody foresaw: still only this message
                malformed.append(self._quarantine(m, f"cannot be decoded: {exc!r}", exc))
                continue
            readings.extend(got)
            if bad is not None:
                malformed.append(self._quarantine(m, bad, None, partial=bool(got)))
            else:
                self._warned_topics.discard(m.topic)
        return Decoded(readings, malformed)

    def _route(self, topic: str) -> _Route:
        route = self._routes.get(topic)
        if route is None:
            plans = list(self._exact.get(topic, ()))
            plans += [plan for f, plan in self._wild if matches(f, topic)]
            plans.sort(key=lambda p: p.index)  # configuration order, as before
            route = _Route(
                tuple(plans),
                tuple(p.address for p in plans),
                frozenset(k for p in plans for k in p.keys),
                Decoder(plans),
            )
            if len(self._routes) < MAX_ROUTES:
                self._routes[topic] = route
        return route

    def _readings(self, m: Message, route: _Route) -> tuple[list[Reading], str | None]:
        """The readings of the tags whose fields decoded, and why the message is malformed (None
        unless a field other than a missing one failed). Missing fields are counted here."""
        values, texts, stamps, errors = route.decode(m.payload)  # one entry per tag
        addresses: Sequence[str] = route.addresses
        reason = None
        if errors is not None:
            reason = self._problems(m, route, errors)
            keep = [i for i, e in enumerate(errors) if e is None]
            if not keep:
                return [], reason
            addresses = [addresses[i] for i in keep]
            values = [values[i] for i in keep]
            stamps = [stamps[i] for i in keep]
            texts = None if texts is None else [texts[i] for i in keep]
        elif self._absent and not self._absent.isdisjoint(route.keys):
            self._present(m, route, errors)
        stamped: Iterable[dt.datetime]
        unstamped = stamps.count(None)  # values without a payload timestamp: arrival time
        if unstamped == len(stamps):
            stamped = repeat(m.arrived)
        elif unstamped:
            stamped = [m.arrived if ts is None else ts for ts in stamps]
        else:
            stamped = cast(list[dt.datetime], stamps)
        return good_readings(self.source.name, addresses, stamped, values, texts), reason

    def _problems(
        self, m: Message, route: _Route, errors: Sequence[DecodeError | None]
    ) -> str | None:
        """Count the tags whose field is missing; the reason the message is malformed, if any
        other field failed: that error alone when every tag failed with it, else each field's."""
        counts = self.status.missing_fields
        bad: list[tuple[_TagPlan, DecodeError]] = []
        for plan, error in zip(route.plans, errors, strict=True):
            if isinstance(error, MissingField):
                for key in plan.keys:
                    counts[key] = counts.get(key, 0) + 1
                if plan.key not in self._absent:
                    self._absent.add(plan.key)
                    self._tell(plan, m.topic, self._told_absent, _GONE)
            elif error is not None:
                bad.append((plan, error))
        if self._absent and not self._absent.isdisjoint(route.keys):
            self._present(m, route, errors)
        if not bad:
            return None
        reasons = [str(error) for _, error in bad]
        if len(bad) == len(errors) and len(set(reasons)) == 1:
            return reasons[0]  # the message's own fault (not JSON, say): said once
        return "; ".join(f"{plan.field or 'payload'}: {error}" for plan, error in bad)

    def _present(
        self, m: Message, route: _Route, errors: Sequence[DecodeError | None] | None
    ) -> None:
        """Tags that were missing and whose field this message gave a value (a payload that is
        not JSON, or a wrong type, says nothing about it)."""
        for i, plan in enumerate(route.plans):
            if plan.key in self._absent and (errors is None or errors[i] is None):
                self._absent.discard(plan.key)
                self._tell(plan, m.topic, self._told_back, _BACK)

    def _tell(self, plan: _TagPlan, topic: str, told: set[str], what: str) -> None:
        """INFO the first time for this tag, DEBUG after that: a field that comes and goes with
        every message (a gateway that publishes only what changed) is not a line per message."""
        first = plan.key not in told
        told.add(plan.key)
        log.log(
            logging.INFO if first else logging.DEBUG,
            what,
            self.source.name,
            ", ".join(plan.keys),
            plan.field,
            topic,
            "; further changes logged at DEBUG" if first else "",
        )

    def _quarantine(
        self, m: Message, reason: str, bug: Exception | None, *, partial: bool = False
    ) -> Malformed:
        """Count and log a malformed message (its topic once, until it decodes)."""
        self.status.malformed += 1
        level = logging.DEBUG if m.topic in self._warned_topics else logging.WARNING
        if bug is not None:
            level = logging.ERROR
        log.log(
            level,
            "%s: malformed payload on topic %r quarantined%s: %s (payload %r)",
            self.source.name,
            m.topic,
            " (its other fields stored)" if partial else "",
            reason,
            m.payload[:200],
            exc_info=bug,
        )
        self._warned_topics.add(m.topic)
        return Malformed(self.source.name, m.topic, m.arrived, m.payload, reason)
