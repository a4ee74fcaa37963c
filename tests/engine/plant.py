"""A test plant in a fresh database, and readings written as the collector would write them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psycopg
import pytest
import yaml

from config import ShopfloorConfig
from config.loader import parse_config
from kpi import Kpis
from storage import rollups
from storage.migrate import migrate
from storage.plant_sync import sync_plant
from storage.writer import BatchWriter, ReadingRow

STATE_MAP = {1: "running", 2: "down", 3: "idle", 4: "planned_stop", 5: "setup"}
REASONS = [
    {"code": 10, "text": "jam", "category": "failure"},
    {"code": 11, "text": "motor", "category": "failure"},
    {"code": 20, "text": "starved", "category": "idle"},
    {"code": 30, "text": "changeover", "category": "setup"},
    {"code": 40, "text": "maintenance", "category": "planned"},
]

Sample = tuple[dt.datetime, float | int | None]


@dataclass(frozen=True)
class M:
    id: str
    ideal_cycle_s: float = 1.0
    # counter name (good/reject/total) -> (mode, wrap)
    counters: Mapping[str, tuple[str, int | None]] = field(
        default_factory=lambda: {"total": ("cumulative", None), "reject": ("cumulative", None)}
    )
    units_per_count: int = 1


def shift(name: str, start: str, end: str, breaks: Sequence[tuple[str, str]] = (), days=None):
    return {
        "name": name,
        "start": start,
        "end": end,
        "days": list(days or ["mon", "tue", "wed", "thu", "fri"]),
        "breaks": [{"start": a, "end": b} for a, b in breaks],
    }


def plant_config(
    machines: Sequence[M],
    *,
    shifts: Sequence[dict] | None = None,
    tz: str = "UTC",
    constraint: str | None = None,
    outputs: Sequence[str] | None = None,
) -> ShopfloorConfig:
    tags = []
    for m in machines:
        tags.append({"machine": m.id, "name": "state", "signal": "state", "topic": f"t/{m.id}/s"})
        tags.append(
            {"machine": m.id, "name": "reason", "signal": "stop_reason", "topic": f"t/{m.id}/r"}
        )
        for name, (mode, wrap) in m.counters.items():
            tag = {
                "machine": m.id,
                "name": f"{name}_count",
                "signal": f"{name}_count",
                "counter": mode,
                "topic": f"t/{m.id}/{name}",
            }
            if wrap is not None:
                tag["wrap"] = wrap
            tags.append(tag)
    doc = {
        "stop_reasons": REASONS,
        "lines": [
            {
                "id": "l1",
                "machines": [
                    {
                        "id": m.id,
                        "ideal_cycle_s": m.ideal_cycle_s,
                        "units_per_count": m.units_per_count,
                        "state_map": STATE_MAP,
                    }
                    for m in machines
                ],
                **({"calendar": "cal"} if shifts else {}),
                **({"constraint_machine": constraint} if constraint else {}),
                **({"output_machines": list(outputs)} if outputs else {}),
            }
        ],
        "sources": [{"name": "plc", "protocol": "mqtt", "host": "127.0.0.1", "tags": tags}],
    }
    if shifts:
        doc["calendars"] = {"cal": {"timezone": tz, "shifts": list(shifts)}}
    return parse_config(yaml.safe_dump(doc, sort_keys=False))


def setup_db(url: str, cfg: ShopfloorConfig) -> dict[tuple[str, str], int]:
    """Migrate, sync the plant; tag ids by (machine, tag name)."""
    with psycopg.connect(url) as conn:
        migrate(conn)
        sync_plant(conn, cfg)
        conn.commit()
        rows = conn.execute("SELECT machine_id, name, id FROM tags").fetchall()
    return {(m, n): i for m, n, i in rows}


async def write(
    url: str, ids: Mapping[tuple[str, str], int], series: Mapping[tuple[str, str], Sequence[Sample]]
) -> None:
    """Readings of (machine, tag name) -> samples, through the batch writer (None: bad quality)."""
    rows = [
        ReadingRow(t, ids[key], None if v is None else float(v), 0 if v is not None else 2, None)
        for key, samples in series.items()
        for t, v in samples
    ]
    writer = await BatchWriter.connect(url)
    try:
        result = await writer.write(rows)
        assert not result.rejected, result.rejected[:3]
    finally:
        await writer.close()


async def refresh(conn: psycopg.AsyncConnection, cfg: ShopfloorConfig, now: dt.datetime) -> None:
    """Bring the rollups up to `now` (storage.rollups, helper K1's)."""
    await rollups.refresh(conn, cfg, now=now)


def assert_same(a: Kpis, b: Kpis) -> None:
    """Every KPI field equal (floats to 1e-6): raw-only and rollup results must agree."""
    for k, v in a.as_dict().items():
        w = b.as_dict()[k]
        if isinstance(v, float):
            assert w == pytest.approx(v, abs=1e-6), k
        else:
            assert w == v, k
