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
    key: str
    held: bool  # state / stop reason: re-recorded by the heartbeat
    deadband: Deadband | None


class TagRouter:
    def __init__(self, cfg: ShopfloorConfig, heartbeat: StateHeartbeat) -> None:
        self.heartbeat = heartbeat
        self.routes: dict[tuple[str, str], Route] = {}
        for source in cfg.sources:
            for tag in source.tags:
                self.routes[(source.name, tag.reading_address)] = Route(
                    key=tag.key,
                    held=tag.signal in (SignalKind.STATE, SignalKind.STOP_REASON),
                    deadband=Deadband(tag.deadband, tag.heartbeat_s)
                    if tag.deadband is not None
                    else None,
                )
        self.unmapped: Counter[str] = Counter()  # per source
        self.filtered: Counter[str] = Counter()  # per source: dropped by a deadband
        self._warned: set[tuple[str, str]] = set()

    def rows(self, readings: Sequence[Reading]) -> list[Row]:
        out: list[Row] = []
        routes = self.routes
        for r in readings:
            route = routes.get((r.source, r.address))
            if route is None:
                self._unmapped(r)
                continue
            if route.deadband is not None and not route.deadband.keep(r):
                self.filtered[r.source] += 1
                continue
            row = (r.ts, route.key, r.value, int(r.quality), r.text)
            if route.held:
                self.heartbeat.seen(r.source, row)
            out.append(row)
        return out

    def _unmapped(self, r: Reading) -> None:
        self.unmapped[r.source] += 1
        if (r.source, r.address) not in self._warned:
            self._warned.add((r.source, r.address))
            log.warning(
                "reading of %s address %r matches no configured tag: counted, not stored",
                r.source,
                r.address,
            )
