"""What a machine's rollups were computed with, and one refresh of a machine at a time.

Config changes. A minute row classifies raw samples with the config of the refresh that wrote
it: the state map, the stop reasons' categories, `short_stop_s`/`max_gap_s`, the counters' modes
and wraps (`basis_of`). The KPI engine adds rows to raw edges computed with *its* config, so rows
from another config make one window a mix of two classifications. Each refresh therefore keeps
the basis in `rollup_state.basis` (migration 006); when it finds another one it recomputes the
machine from its first reading kept (no earlier than the raw retention horizon, as any refresh)
with a WARNING naming what changed, and bumps `late_seq` so the API drops cached answers. Minutes
older than the raw data kept cannot be recomputed and keep their classification. Ideal cycle
times and units per count need none of this: they are histories with a validity start
(storage.plant_sync), so a change applies from then on.

Concurrency. Two refreshes of one machine at once (the collector's periodic one and
`shopfloor rollups`, or two collectors on one database) would interleave their chunks: the
second COPY of a minute fails on the primary key, and one refresh's chunk commit sets
`computed_until` over a rebuild mark the other has just set, so the rebuild is lost. So each
machine is refreshed under a session advisory lock (`machine_lock`): the collector skips a
machine another refresh holds (its dirty mark stays for the next run), the command waits for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from config.model import ShopfloorConfig
from config.plant import Machine
from storage.samples import MachineTags, reason_categories

log = logging.getLogger(__name__)

# pg_advisory_lock(int4, int4) keys: this class, crc32 of the machine id. A collision between two
# machine ids only serializes their refreshes. (storage.migrate takes the one-bigint form.)
ROLLUP_LOCK_CLASS = 7_464_022

Basis = dict[str, Any]  # JSON: what basis_of gives and rollup_state.basis holds


@dataclass(frozen=True)
class Rebuild:
    """A requested recomputation: from `since`, or (None) from each machine's first reading
    kept (no earlier than the raw retention horizon)."""

    since: dt.datetime | None = None


def basis_of(cfg: ShopfloorConfig, machine: Machine, tags: MachineTags) -> Basis:
    """Everything a minute row's figures depend on besides the readings and the histories."""
    kpi = cfg.settings.kpi
    return {
        "state_map": {str(code): cls.value for code, cls in sorted(machine.state_map.items())},
        "stop_reasons": {
            str(code): cat.value for code, cat in sorted(reason_categories(cfg, machine).items())
        },
        "kpi.short_stop_s": float(kpi.short_stop_s),
        "kpi.max_gap_s": float(kpi.max_gap_s),
        "counters": {
            name: mode if wrap is None else f"{mode}, wrap {wrap}"
            for name, (_, mode, wrap) in sorted(tags.counters.items())
        },
    }


def differences(old: Basis, new: Basis, *, most: int = 6) -> str:
    """What changed from `old` to `new`, for a log line: `state_map 3: down -> setup, ...`."""
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for item in sorted(set(a) | set(b), key=lambda k: (len(k), k)):
                if a.get(item) != b.get(item):
                    found.append(f"{key} {item}: {a.get(item, '-')} -> {b.get(item, '-')}")
        else:
            found.append(f"{key} {_text(a)} -> {_text(b)}")
    more = f", and {len(found) - most} more" if len(found) > most else ""
    return ", ".join(found[:most]) + more


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_LOWER_SQL = """
UPDATE rollup_state SET computed_until = {until}, late_seq = late_seq + 1 {extra}
WHERE machine_id = %(machine)s
"""
_LEAST_SINCE = (
    "CASE WHEN computed_until IS NULL THEN NULL ELSE LEAST(computed_until, %(since)s) END"
)


async def prepare(
    conn: psycopg.AsyncConnection,
    cfg: ShopfloorConfig,
    machine: Machine,
    tags: MachineTags,
    rebuild: Rebuild | None,
) -> None:
    """Before a machine's refresh, under its lock: recompute it all when its basis changed,
    and apply a requested rebuild (`computed_until` lowered: the refresh then starts there)."""
    new = basis_of(cfg, machine, tags)
    params = {"machine": machine.id, "basis": json.dumps(new)}
    cur = await conn.execute(
        "SELECT basis, computed_until FROM rollup_state WHERE machine_id = %s", (machine.id,)
    )
    old, computed_until = await cur.fetchone() or (None, None)
    if old is not None and old != new and computed_until is not None:
        log.warning(
            "rollups %s: computed with another configuration (%s): recomputing its minutes from "
            "its first reading kept; older minutes keep the old classification",
            machine.id,
            differences(old, new),
        )
        await conn.execute(
            _LOWER_SQL.format(until="NULL", extra=", basis = %(basis)s::jsonb"), params
        )
        return
    if old != new:  # first recorded (rollups from before migration 006), or nothing computed yet
        await conn.execute(
            "UPDATE rollup_state SET basis = %(basis)s::jsonb WHERE machine_id = %(machine)s",
            params,
        )
    if rebuild is not None:
        # LEAST ignores NULL: a machine never computed stays so (its rows start at its first
        # reading, without a gap)
        until = "NULL" if rebuild.since is None else _LEAST_SINCE
        await conn.execute(
            _LOWER_SQL.format(until=until, extra=""), params | {"since": rebuild.since}
        )


def _lock_key(machine_id: str) -> tuple[int, int]:
    key = zlib.crc32(machine_id.encode())
    return ROLLUP_LOCK_CLASS, key - 2**32 if key >= 2**31 else key  # int4


@contextlib.asynccontextmanager
async def machine_lock(
    conn: psycopg.AsyncConnection, machine_id: str, *, wait: bool
) -> AsyncIterator[bool]:
    """Hold the machine's refresh lock on this (autocommit) session; yields False when another
    session holds it and `wait` is not set. A lost session releases it with the server."""
    key = _lock_key(machine_id)
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
    held = bool((await cur.fetchone() or (False,))[0])
    if not held and wait:
        log.info("rollups %s: another refresh holds it (a collector's?): waiting", machine_id)
        await conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
        held = True
    try:
        yield held
    finally:
        if held and not conn.broken and not conn.closed:
            await conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
