"""Sparkplug addresses to the reading addresses of the configured tags.

A tag's address is `group/edge[/device]#metric`, where group and edge node may be `+`. A metric
is looked up under its exact address and the three wildcard forms; each configured address
found gives one reading (the collector hands it to every tag with that address). Asked once per
metric and birth (scope.py keeps the answer), so no cache here.
"""

from __future__ import annotations

from config.sources.sparkplug import WILDCARD, SparkplugSource


def address(group: str, edge: str, device: str | None, metric: str) -> str:
    node = f"{group}/{edge}"
    return f"{node}/{device}#{metric}" if device else f"{node}#{metric}"


class TagMap:
    def __init__(self, source: SparkplugSource) -> None:
        self.source = source.name
        self._known = frozenset(t.reading_address for t in source.tags)

    def addresses(self, group: str, edge: str, device: str | None, metric: str) -> tuple[str, ...]:
        """The configured reading addresses of this metric, sorted; () when no tag names it."""
        forms = {address(g, e, device, metric) for g in (group, WILDCARD) for e in (edge, WILDCARD)}
        return tuple(sorted(forms & self._known))
