"""Metric values to readings of the configured tags, by Sparkplug address.

A tag's address is `group/edge[/device]#metric`, where group and edge node may be `+`. A value
is looked up under its exact address and the three wildcard forms; each configured address
found gives one reading (the collector hands it to every tag with that address). The lookups
are cached per metric: a plant has a bounded set of metrics, and the cache is bounded too.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from adapters.base import Reading
from adapters.sparkplug.session import Value
from config.sources.sparkplug import WILDCARD, SparkplugSource

_reading = partial(tuple.__new__, Reading)  # a Reading from a tuple of its fields, in C
MAX_CACHED = 100_000  # metric addresses remembered; past it the cache starts over
_Key = tuple[str, str, str | None, str]


def address(group: str, edge: str, device: str | None, metric: str) -> str:
    node = f"{group}/{edge}"
    return f"{node}/{device}#{metric}" if device else f"{node}#{metric}"


class TagMap:
    def __init__(self, source: SparkplugSource) -> None:
        self.source = source.name
        self._known = frozenset(t.reading_address for t in source.tags)
        self._cache: dict[_Key, tuple[str, ...]] = {}
        self.unmatched = 0  # values of metrics no tag names

    def addresses(self, group: str, edge: str, device: str | None, metric: str) -> tuple[str, ...]:
        key = (group, edge, device, metric)
        found = self._cache.get(key)
        if found is None:
            forms = {
                address(g, e, device, metric) for g in (group, WILDCARD) for e in (edge, WILDCARD)
            }
            found = tuple(sorted(forms & self._known))
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = found
        return found

    def readings(self, values: Iterable[Value]) -> list[Reading]:
        out: list[Reading] = []
        append, source, cache = out.append, self.source, self._cache
        for v in values:
            found = cache.get((v.group, v.edge, v.device, v.metric))
            if found is None:
                found = self.addresses(v.group, v.edge, v.device, v.metric)
            if not found:
                self.unmatched += 1
            for a in found:
                append(_reading((source, a, v.ts, v.value, v.quality, v.text)))
        return out
