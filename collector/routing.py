"""Raw readings -> rows of the plant's tags: mapping by (source, address), filters, heartbeat.

Adapters only know addresses; the plant model knows tags. A reading whose address matches no
configured tag is counted per source and logged once per address (never stored silently under a
guessed tag).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.base import Reading
from collector.filters import Deadband
from collector.heartbeat import StateHeartbeat
from collector.rows import Row
from config import ShopfloorConfig
from config.tags import SignalKind

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Route:
    """A tag whose readings need more than a key: held by the heartbeat, or deadband-filtered."""

    key: str
    held: bool  # state / stop reason: re-recorded by the heartbeat
    deadband: Deadband | None


class TagRouter:
    def __init__(self, cfg: ShopfloorConfig, heartbeat: StateHeartbeat) -> None:
        self.heartbeat = heartbeat
        # source -> address -> the tag key (most tags: just map and store) or a Route. One dict
        # per source, so a reading costs one lookup by address, no (source, address) tuple.
        self.routes: dict[str, dict[str, str | Route]] = {}
        for source in cfg.sources:
            by_address = self.routes.setdefault(source.name, {})
            for tag in source.tags:
                held = tag.signal in (SignalKind.STATE, SignalKind.STOP_REASON)
                deadband = (
                    Deadband(tag.deadband, tag.heartbeat_s) if tag.deadband is not None else None
                )
                by_address[tag.reading_address] = (
                    Route(tag.key, held, deadband) if held or deadband is not None else tag.key
                )
        self.unmapped: Counter[str] = Counter()  # per source
        self.filtered: Counter[str] = Counter()  # per source: dropped by a deadband
        self._warned: set[tuple[str, str]] = set()

    def rows(self, readings: Sequence[Reading]) -> list[Row]:
        """Rows of the mapped readings, in order. The hot path of the collector: one dict lookup
        and one tuple per plain reading (an adapter's batch comes from one source)."""
        out: list[Row] = []
        append = out.append
        routes = self.routes
        last_source: str | None = None
        by_address: dict[str, str | Route] = {}
        for r in readings:
            source, address, ts, value, quality, text = r
            if source != last_source:
                by_address = routes.get(source, {})
                last_source = source
            route = by_address.get(address)
            if isinstance(route, str):
                append((ts, route, value, int(quality), text))
            elif route is None:
                self._unmapped(r)
            else:
                row = self._special(route, r)
                if row is not None:
                    append(row)
        return out

    def _special(self, route: Route, r: Reading) -> Row | None:
        if route.deadband is not None and not route.deadband.keep(r):
            self.filtered[r.source] += 1
            return None
        row = (r.ts, route.key, r.value, int(r.quality), r.text)
        if route.held:
            self.heartbeat.seen(r.source, row)
        return row

    def _unmapped(self, r: Reading) -> None:
        self.unmapped[r.source] += 1
        if (r.source, r.address) not in self._warned:
            self._warned.add((r.source, r.address))
            log.warning(
                "reading of %s address %r matches no configured tag: counted, not stored",
                r.source,
                r.address,
            )
