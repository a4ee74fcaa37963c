"""The host application's view of each edge node's session (Sparkplug 3.0 §5): pure, no I/O.

Per edge node (group, edge node id): whether it is born, the bdSeq of its current NBIRTH, the
seq expected next (one counter for the node and its devices, 0-255 wrapping), the metrics of
the node's and each device's birth (a `Scope`: names, aliases, datatypes and tag addresses,
resolved once), and its devices that are born. `apply` takes one message in arrival order and
gives the readings to store plus, when the node's state cannot be trusted, a reason to ask it
for a Rebirth:

- a seq gap the missing messages did not fill within `reorder_timeout_s` (the spec's Reorder
  Timeout; 0: at once). The data is stored meanwhile: a time series does not need the
  messages in order. A missing one that arrives late is applied and counted (`reordered`);
  one whose number comes round again in order is lost (due at once). `due(now)` gives the
  nodes whose wait ran out;
- NDATA, DBIRTH, DDATA or DDEATH from a node without a birth, or DDATA of an unborn device;
- a metric that is in no birth (unknown alias or name).

Requests to one node are at most one per `rebirth_wait_s`. NDEATH applies only when its bdSeq
matches the NBIRTH's (a late will of an older session is ignored, counted). Deaths give every
metric of the node or device a BAD reading with no value: at our own receive time for NDEATH
(a will's timestamp is when it was registered), at the payload's time for DDEATH. `lost()` does
the same for every node when our own connection drops: nobody knows their values meanwhile.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from adapters.base import Reading
from adapters.sparkplug.payload import MAX_SEQ, PayloadIn, alias_of, bd_seq, name_of, stamp
from adapters.sparkplug.scope import Known, ReadingMaker, Scope
from adapters.sparkplug.tagmap import TagMap
from adapters.sparkplug.topics import Topic


class Outcome(NamedTuple):
    readings: list[Reading]
    rebirth: str | None  # why the node should be asked to rebirth; None: no request now


@dataclass
class NodeState:
    born: bool = False
    bd_seq: int | None = None
    next_seq: int | None = None
    # every birth's metrics, in birth order: the node's (None) and each device's (dead ones too)
    scopes: dict[str | None, Scope] = field(default_factory=dict)
    devices: set[str] = field(default_factory=set)  # born devices
    rebirth_asked: dt.datetime | None = None
    missing: set[int] = field(default_factory=set)  # seqs skipped, awaited until `reorder_by`
    reorder_by: dt.datetime | None = None

    def reset_seq(self) -> None:
        self.next_seq = None
        self.missing.clear()
        self.reorder_by = None


class Sessions:
    """Every edge node seen on the broker; counters in `counts` (status.extra names)."""

    COUNTERS = (
        "births",
        "deaths",
        "seq_gaps",
        "reordered",
        "data_before_birth",
        "unknown_metric",
        "stale_ndeath_ignored",
        "skipped_type",
        "skipped_transient",
        "unmatched",  # values of metrics no tag names
    )

    def __init__(
        self,
        tags: TagMap,
        *,
        rebirth_wait_s: float,
        reorder_timeout_s: float = 0.0,
        store_transient: bool = False,
    ) -> None:
        self.nodes: dict[tuple[str, str], NodeState] = {}
        self.counts: Counter[str] = Counter(dict.fromkeys(self.COUNTERS, 0))
        self._tags = tags
        self._maker = ReadingMaker(tags.source, self.counts, store_transient=store_transient)
        self._wait = dt.timedelta(seconds=rebirth_wait_s)
        self._reorder = dt.timedelta(seconds=reorder_timeout_s)

    def apply(self, topic: Topic, payload: PayloadIn, arrived: dt.datetime) -> Outcome:
        """One message, in arrival order."""
        node = self.nodes.get((topic.group, topic.edge))
        if node is None:
            node = self.nodes[topic.group, topic.edge] = NodeState()
        kind = topic.kind
        if kind == "NBIRTH":
            return self._nbirth(topic, node, payload, arrived)
        if kind == "NDEATH":
            return self._ndeath(node, payload, arrived)
        if kind in ("NCMD", "DCMD"):
            return Outcome([], None)  # commands to nodes: ours or another host's
        if not node.born:
            self.counts["data_before_birth"] += 1
            return Outcome([], self._ask(node, arrived, f"{kind} before NBIRTH"))
        reason = self._sequence(node, payload.seq, arrived)
        device = topic.device
        if kind == "DBIRTH":
            assert device is not None
            readings = self._birth(topic, node, device, payload, arrived)
            return Outcome(readings, self._maybe(node, arrived, reason))
        if kind == "DDEATH":
            assert device is not None
            readings = self._dead(node, device, _payload_time(payload, arrived))
            node.devices.discard(device)
            return Outcome(readings, self._maybe(node, arrived, reason))
        if device is not None and device not in node.devices:
            self.counts["data_before_birth"] += 1
            return Outcome([], self._ask(node, arrived, f"DDATA of {device!r} before its DBIRTH"))
        scope = node.scopes[device]
        readings, unknown = self._maker.readings(
            scope, payload.metrics, _payload_time(payload, arrived)
        )
        if unknown and reason is None:
            reason = f"{unknown} metric(s) not in any birth"
        return Outcome(readings, self._maybe(node, arrived, reason))

    def lost(self, at: dt.datetime) -> list[Reading]:
        """Our connection dropped: every known metric BAD from `at`; every node needs a birth."""
        readings: list[Reading] = []
        for node in self.nodes.values():
            if node.born:
                readings += self._dead(node, None, at)
            node.born = False
            node.reset_seq()
            node.devices.clear()
        return readings

    def next_due(self) -> dt.datetime | None:
        """When the earliest reorder wait runs out; None: no gap is awaited."""
        return min((n.reorder_by for n in self.nodes.values() if n.reorder_by), default=None)

    def due(self, now: dt.datetime) -> list[tuple[str, str, str]]:
        """(group, edge node, reason) of each node whose missing messages did not come within
        the reorder timeout, when a Rebirth request may go now."""
        asks = []
        for (group, edge), node in self.nodes.items():
            if node.reorder_by is None or now < node.reorder_by:
                continue
            missing = sorted(node.missing)
            node.missing.clear()
            node.reorder_by = None
            reason = self._ask(node, now, f"seq {_seqs(missing)} missing")
            if reason is not None:
                asks.append((group, edge, reason))
        return asks

    # -- births and deaths ---------------------------------------------------------------------

    def _nbirth(
        self, topic: Topic, node: NodeState, payload: PayloadIn, arrived: dt.datetime
    ) -> Outcome:
        node.scopes.clear()
        node.devices.clear()
        node.born = True
        node.rebirth_asked = None
        node.bd_seq = bd_seq(payload)
        node.reset_seq()
        node.next_seq = None if payload.seq is None else (payload.seq + 1) % (MAX_SEQ + 1)
        self.counts["births"] += 1
        return Outcome(self._birth(topic, node, None, payload, arrived), None)

    def _birth(
        self,
        topic: Topic,
        node: NodeState,
        device: str | None,
        payload: PayloadIn,
        arrived: dt.datetime,
    ) -> list[Reading]:
        """Register a birth's metrics (names, aliases, datatypes, tag addresses) in a new scope
        of the node or device, and give their values."""
        scope = Scope()
        for m in payload.metrics:
            name = name_of(m)
            if name is None:
                continue
            addresses = self._tags.addresses(topic.group, topic.edge, device, name)
            scope.add(Known(name, m.datatype or None, addresses), alias_of(m))
        node.scopes.pop(device, None)  # the scopes stay in birth order
        node.scopes[device] = scope
        if device is not None:
            node.devices.add(device)
            self.counts["births"] += 1
        return self._maker.readings(scope, payload.metrics, _payload_time(payload, arrived))[0]

    def _ndeath(self, node: NodeState, payload: PayloadIn, arrived: dt.datetime) -> Outcome:
        if not node.born or bd_seq(payload) != node.bd_seq:
            self.counts["stale_ndeath_ignored"] += 1
            return Outcome([], None)
        readings = self._dead(node, None, arrived)
        node.born = False
        node.reset_seq()
        node.devices.clear()
        return Outcome(readings, None)

    def _dead(self, node: NodeState, device: str | None, at: dt.datetime) -> list[Reading]:
        """BAD, valueless readings for the node's metrics and its devices' (device None), or
        for one device's."""
        self.counts["deaths"] += 1
        if device is None:
            scopes = list(node.scopes.values())
        else:
            scopes = [node.scopes[device]] if device in node.scopes else []
        return self._maker.dead(scopes, at)

    # -- seq and rebirth -----------------------------------------------------------------------

    def _sequence(self, node: NodeState, seq: int | None, now: dt.datetime) -> str | None:
        """Check and advance the node's seq; the reason for a Rebirth on a gap when there is
        no reorder timeout (else the gap's seqs are awaited until `due`)."""
        expected = node.next_seq
        if seq is None:
            return None  # only NDEATH and commands lack it; tolerated elsewhere
        if seq != expected and seq in node.missing:  # a late one: in time, nothing is lost
            self.counts["reordered"] += 1
            node.missing.discard(seq)
            if not node.missing:
                node.reorder_by = None
            return None
        node.next_seq = (seq + 1) % (MAX_SEQ + 1)
        if expected is None or seq == expected:
            if node.missing and seq in node.missing:  # its number came round again: lost
                node.reorder_by = now
            return None
        self.counts["seq_gaps"] += 1
        if not self._reorder:
            return f"seq {seq} where {expected} was expected"
        skipped = (seq - expected) % (MAX_SEQ + 1)
        node.missing.update((expected + i) % (MAX_SEQ + 1) for i in range(skipped))
        node.reorder_by = node.reorder_by or now + self._reorder
        return None

    def _maybe(self, node: NodeState, now: dt.datetime, reason: str | None) -> str | None:
        return None if reason is None else self._ask(node, now, reason)

    def _ask(self, node: NodeState, now: dt.datetime, reason: str) -> str | None:
        """The reason, if a Rebirth request may go now (one per `rebirth_wait_s` per node)."""
        if node.rebirth_asked is not None and now - node.rebirth_asked < self._wait:
            return None
        node.rebirth_asked = now
        return reason


def _seqs(seqs: list[int]) -> str:
    shown = ", ".join(map(str, seqs[:5]))
    return shown if len(seqs) <= 5 else f"{shown} and {len(seqs) - 5} more"


def _payload_time(payload: PayloadIn, arrived: dt.datetime) -> dt.datetime:
    return arrived if payload.timestamp_ms is None else stamp(payload.timestamp_ms)
