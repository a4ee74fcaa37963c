"""A birth's metrics resolved once, and received metrics to readings through them.

A birth certificate (NBIRTH for the node, DBIRTH for a device) fills one `Scope`: each metric's
entry holds its datatype and the reading addresses of the tags that name it, looked up once,
at the birth. A data metric is then a dict lookup by alias (or name), its timestamp and its
value, read from the protobuf message with no object of our own in between: at a few hundred
thousand metrics a second every field read and every Python call per metric shows
(docs/benchmarks.md, Sparkplug B phase).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from adapters.base import Quality, Reading
from adapters.sparkplug.payload import BDSEQ_METRIC, Metric, Unsupported, convert, quality, stamp
from adapters.sparkplug.schema import ONEOF

_reading = partial(tuple.__new__, Reading)  # a Reading from a tuple of its fields, in C
_FLOATS = ("double_value", "float_value")  # no datatype changes these
_GOOD: int = Quality.GOOD
_BAD: int = Quality.BAD


class Known(NamedTuple):
    """A metric as its birth defined it."""

    name: str
    datatype: int | None
    addresses: tuple[str, ...]  # reading addresses of the tags naming it; () when none does


@dataclass(slots=True)
class Scope:
    """The metrics of one birth certificate: the edge node's or one device's."""

    by_name: dict[str, Known] = field(default_factory=dict)
    by_alias: dict[int, Known] = field(default_factory=dict)

    def add(self, known: Known, alias: int | None) -> None:
        self.by_name[known.name] = known
        if alias is not None:
            self.by_alias[alias] = known


class ReadingMaker:
    """Readings of one source from metrics resolved in a scope; what it skips goes to `counts`
    (unknown_metric, skipped_transient, skipped_type, unmatched)."""

    def __init__(self, source: str, counts: Counter[str], *, store_transient: bool) -> None:
        self.source = source
        self.counts = counts
        self.store_transient = store_transient

    def readings(
        self, scope: Scope, metrics: Sequence[Metric], default_ts: dt.datetime
    ) -> tuple[list[Reading], int]:
        """One reading per tag address of each metric, in order; and how many metrics the scope
        does not know. A metric without a timestamp has `default_ts`."""
        out: list[Reading] = []
        append = out.append
        source, by_name, by_alias = self.source, scope.by_name, scope.by_alias
        skip_transient = not self.store_transient
        unknown = transient = unsupported = unmatched = 0
        last_ms, last_ts = 0, default_ts  # metrics of one payload mostly share a timestamp
        for m in metrics:
            if m.HasField("name"):
                known = by_name.get(m.name)
            else:
                alias = m.alias  # 0 when absent: then only a sent alias 0 is one
                known = by_alias.get(alias) if alias or m.HasField("alias") else None
            if known is None:
                unknown += 1
                continue
            if skip_transient and m.is_transient:
                transient += 1
                continue
            ms = m.timestamp
            if ms != last_ms:
                last_ms, last_ts = ms, stamp(ms) if ms else default_ts
            text = None
            if m.is_null:
                value, q = None, _BAD
            else:
                # A oneof member reads 0.0 unless it is the one set: a double that is not
                # zero is the value, and the common case needs no WhichOneof.
                value = m.double_value
                if not value:
                    try:
                        value, text = _value(known, m)
                    except Unsupported:
                        unsupported += 1
                        continue
                q = quality(m) if m.HasField("properties") else _GOOD
            addresses = known.addresses
            if not addresses:
                unmatched += 1
            for a in addresses:
                append(_reading((source, a, last_ts, value, q, text)))
        self._count(unknown, transient, unsupported, unmatched)
        return out, unknown

    def dead(self, scopes: Sequence[Scope], at: dt.datetime) -> list[Reading]:
        """BAD readings with no value at `at` for every metric of these scopes but bdSeq."""
        out: list[Reading] = []
        unmatched = 0
        for scope in scopes:
            for known in scope.by_name.values():
                if known.name == BDSEQ_METRIC:
                    continue
                if not known.addresses:
                    unmatched += 1
                out += [_reading((self.source, a, at, None, _BAD, None)) for a in known.addresses]
        self._count(0, 0, 0, unmatched)
        return out

    def _count(self, unknown: int, transient: int, unsupported: int, unmatched: int) -> None:
        counts = self.counts
        if unknown:
            counts["unknown_metric"] += unknown
        if transient:
            counts["skipped_transient"] += transient
        if unsupported:
            counts["skipped_type"] += unsupported
        if unmatched:
            counts["unmatched"] += unmatched


def _value(known: Known, m: Metric) -> tuple[float | None, str | None]:
    """(value, text) of a metric that is not a non-zero double: by the datatype of the data
    message if it has one, else of the birth."""
    kind = m.WhichOneof(ONEOF)
    if kind in _FLOATS:
        return getattr(m, kind), None
    return convert(m.datatype or known.datatype, m)
