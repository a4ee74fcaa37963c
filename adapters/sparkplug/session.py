"""The host application's view of each edge node's session (Sparkplug 3.0 §5): pure, no I/O.

Per edge node (group, edge node id): whether it is born, the bdSeq of its current NBIRTH, the
seq expected next (one counter for the node and its devices, 0-255 wrapping), one alias map for
the node and all its devices, each metric's datatype, and its devices that are born. `apply`
takes one message in arrival order and gives the metric values to store plus, when the node's
state cannot be trusted, a reason to ask it for a Rebirth:

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

from adapters.base import Quality
from adapters.sparkplug.payload import (
    BDSEQ_METRIC,
    MAX_SEQ,
    MetricIn,
    PayloadIn,
    Unsupported,
    convert,
    stamp,
)
from adapters.sparkplug.topics import Topic

MetricKey = tuple[str | None, str]  # (device or None for the node, metric name)


class Value(NamedTuple):
    """One metric value (or death marker) to store, with its full Sparkplug address."""

    group: str
    edge: str
    device: str | None
    metric: str
    ts: dt.datetime
    value: float | None
    text: str | None
    quality: int


class Outcome(NamedTuple):
    values: list[Value]
    rebirth: str | None  # why the node should be asked to rebirth; None: no request now


@dataclass
class NodeState:
    born: bool = False
    bd_seq: int | None = None
    next_seq: int | None = None
    aliases: dict[int, MetricKey] = field(default_factory=dict)
    types: dict[MetricKey, int | None] = field(default_factory=dict)  # every birth metric
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
    )

    def __init__(
        self,
        *,
        rebirth_wait_s: float,
        reorder_timeout_s: float = 0.0,
        store_transient: bool = False,
    ) -> None:
        self.nodes: dict[tuple[str, str], NodeState] = {}
        self.counts: Counter[str] = Counter(dict.fromkeys(self.COUNTERS, 0))
        self._wait = dt.timedelta(seconds=rebirth_wait_s)
        self._reorder = dt.timedelta(seconds=reorder_timeout_s)
        self._store_transient = store_transient

    def apply(self, topic: Topic, payload: PayloadIn, arrived: dt.datetime) -> Outcome:
        """One message, in arrival order."""
        node = self.nodes.setdefault((topic.group, topic.edge), NodeState())
        kind = topic.kind
        if kind == "NBIRTH":
            return self._nbirth(topic, node, payload, arrived)
        if kind == "NDEATH":
            return self._ndeath(topic, node, payload, arrived)
        if kind in ("NCMD", "DCMD"):
            return Outcome([], None)  # commands to nodes: ours or another host's
        if not node.born:
            self.counts["data_before_birth"] += 1
            return Outcome([], self._ask(node, arrived, f"{kind} before NBIRTH"))
        reason = self._sequence(node, payload.seq, arrived)
        device = topic.device
        if kind == "DBIRTH":
            assert device is not None
            values = self._birth(topic, node, device, payload, arrived)
            return Outcome(values, self._maybe(node, arrived, reason))
        if kind == "DDEATH":
            assert device is not None
            values = self._dead(topic, node, device, _payload_time(payload, arrived))
            node.devices.discard(device)
            return Outcome(values, self._maybe(node, arrived, reason))
        if device is not None and device not in node.devices:
            self.counts["data_before_birth"] += 1
            return Outcome([], self._ask(node, arrived, f"DDATA of {device!r} before its DBIRTH"))
        values, unknown = self._values(topic, node, device, payload, arrived)
        if unknown and reason is None:
            reason = f"{unknown} metric(s) not in any birth"
        return Outcome(values, self._maybe(node, arrived, reason))

    def lost(self, at: dt.datetime) -> list[Value]:
        """Our connection dropped: every known metric BAD from `at`; every node needs a birth."""
        values: list[Value] = []
        for (group, edge), node in self.nodes.items():
            if node.born:
                values += self._dead(Topic("NDEATH", group, edge, None), node, None, at)
            node.born = False
            node.reset_seq()
            node.devices.clear()
        return values

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
        node.aliases.clear()
        node.types.clear()
        node.devices.clear()
        node.born = True
        node.rebirth_asked = None
        node.bd_seq = _bd_seq(payload)
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
    ) -> list[Value]:
        """Register a birth's metrics (names, aliases, datatypes) and give their values."""
        if device is not None:
            for key in [k for k in node.types if k[0] == device]:
                del node.types[key]
            for alias in [a for a, k in node.aliases.items() if k[0] == device]:
                del node.aliases[alias]
            node.devices.add(device)
            self.counts["births"] += 1
        for m in payload.metrics:
            if m.name is None:
                continue
            key = (device, m.name)
            node.types[key] = m.datatype
            if m.alias is not None:
                node.aliases[m.alias] = key
        return self._values(topic, node, device, payload, arrived)[0]

    def _ndeath(
        self, topic: Topic, node: NodeState, payload: PayloadIn, arrived: dt.datetime
    ) -> Outcome:
        if not node.born or _bd_seq(payload) != node.bd_seq:
            self.counts["stale_ndeath_ignored"] += 1
            return Outcome([], None)
        values = self._dead(topic, node, None, arrived)
        node.born = False
        node.reset_seq()
        node.devices.clear()
        return Outcome(values, None)

    def _dead(
        self, topic: Topic, node: NodeState, device: str | None, at: dt.datetime
    ) -> list[Value]:
        """BAD, valueless readings for the node's metrics and its devices' (device None), or
        for one device's."""
        self.counts["deaths"] += 1
        return [
            Value(topic.group, topic.edge, d, name, at, None, None, Quality.BAD)
            for d, name in node.types
            if (d == device or device is None) and name != BDSEQ_METRIC
        ]

    # -- data ----------------------------------------------------------------------------------

    def _values(
        self,
        topic: Topic,
        node: NodeState,
        device: str | None,
        payload: PayloadIn,
        arrived: dt.datetime,
    ) -> tuple[list[Value], int]:
        """The payload's metric values, resolved by alias or name; and how many were unknown."""
        values: list[Value] = []
        append = values.append
        unknown = 0
        default_ts = _payload_time(payload, arrived)
        group, edge = topic.group, topic.edge
        types, store_transient = node.types, self._store_transient
        last_ms, last_ts = -1, default_ts  # metrics of one payload mostly share a timestamp
        for m in payload.metrics:
            key = _resolve(node, device, m)
            if key is None or key not in types:
                unknown += 1
                self.counts["unknown_metric"] += 1
                continue
            if m.is_transient and not store_transient:
                self.counts["skipped_transient"] += 1
                continue
            ms = m.ts_ms
            if ms is None:
                ts = default_ts
            elif ms == last_ms:
                ts = last_ts
            else:
                ts = last_ts = stamp(ms)
                last_ms = ms
            if m.is_null:
                append(Value(group, edge, key[0], key[1], ts, None, None, Quality.BAD))
                continue
            kind = m.kind
            if kind == "double_value" or kind == "float_value":  # no datatype can change these
                append(Value(group, edge, key[0], key[1], ts, m.raw, None, m.quality))
                continue
            try:
                value, text = convert(types[key] if m.datatype is None else m.datatype, m)
            except Unsupported:
                self.counts["skipped_type"] += 1
                continue
            append(Value(group, edge, key[0], key[1], ts, value, text, m.quality))
        return values, unknown

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


def _resolve(node: NodeState, device: str | None, m: MetricIn) -> MetricKey | None:
    """A data metric's key: by name if it has one, else by alias (of this node or device)."""
    if m.name is not None:
        return (device, m.name)
    key = None if m.alias is None else node.aliases.get(m.alias)
    return key if key is not None and key[0] == device else None


def _bd_seq(payload: PayloadIn) -> int | None:
    for m in payload.metrics:
        if m.name == BDSEQ_METRIC and m.kind in ("long_value", "int_value"):
            return int(m.raw)
    return None


def _payload_time(payload: PayloadIn, arrived: dt.datetime) -> dt.datetime:
    return arrived if payload.timestamp_ms is None else stamp(payload.timestamp_ms)
