"""Two tags on one address, through an adapter and the collector's router (issue 14).

A machine's state register also stored as a measurement of the next machine, and one counter
shared by two machines: each tag must get every reading. `RoutedSink` is an adapter's sink that
maps the batches to rows with the real `TagRouter`, as the collector does.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

import yaml

from adapters.base import Reading
from collector.heartbeat import StateHeartbeat
from collector.routing import TagRouter
from config import ShopfloorConfig, parse_config

PLANT: dict[str, Any] = {
    "lines": [
        {
            "id": "l1",
            "machines": [
                {"id": "m1", "ideal_cycle_s": 1, "state_map": {1: "running", 2: "down"}},
                {"id": "m2", "ideal_cycle_s": 1, "state_map": {1: "running", 2: "down"}},
            ],
        }
    ]
}


def config_with(*sources: dict[str, Any]) -> ShopfloorConfig:
    """The two-machine plant with these sources, through the real config parser."""
    return parse_config(yaml.safe_dump({**PLANT, "sources": list(sources)}))


class RoutedSink:
    """Records an adapter's readings and the rows the router makes of them, per tag key."""

    def __init__(self, cfg: ShopfloorConfig) -> None:
        self.router = TagRouter(cfg, StateHeartbeat(30))
        self.readings: list[Reading] = []
        self.rows: dict[str, list[tuple[dt.datetime, float | None]]] = {}

    async def __call__(self, batch: Sequence[Reading]) -> None:
        self.readings.extend(batch)
        for ts, key, value, _quality, _text in self.router.rows(batch):
            self.rows.setdefault(key, []).append((ts, value))

    def values(self, key: str) -> list[float | None]:
        return [v for _, v in self.rows.get(key, [])]

    def of(self, address: str) -> list[tuple[dt.datetime, float | None]]:
        return [(r.ts, r.value) for r in self.readings if r.address == address]

    def assert_each_tag_gets_every_reading(self, *keys: str, address: str) -> None:
        """The address was read once per sample (no duplicate reading), and every tag on it
        has exactly those readings as rows: none dropped, none twice."""
        readings = self.of(address)
        assert readings, f"no reading of {address!r}"
        twice = [ts for ts, n in Counter(ts for ts, _ in readings).items() if n > 1]
        assert not twice, f"{address!r} delivered more than once at {twice}"
        for key in keys:
            assert self.rows.get(key) == readings, (key, self.rows.get(key), readings)
        assert self.router.unmapped.total() == 0
