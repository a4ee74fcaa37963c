"""Make the database's plant model match the config: lines, machines, tags, reasons, calendars.

On a database several edges share, this edge's part only (storage.ownership, docs/scale.md).

Ids come from the config, so re-running changes nothing. What leaves the config is marked
inactive, never deleted: its readings stay meaningful. A changed ideal cycle time is appended with
its validity start, so KPIs of the past keep the cycle time that was valid then; so is a changed
units per count (KPI.md §4).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from dataclasses import dataclass

import psycopg

from config import ShopfloorConfig
from config.plant import Calendar
from storage.ownership import PLANT_SYNC_LOCK, OwnershipConflict, conflicts


@dataclass(frozen=True)
class SyncReport:
    lines: int
    machines: int
    tags: int
    cycle_changes: int
    # (host, when) of this edge's last sync, when that was another host: a replaced PC, or a
    # second collector under the same edge name, which would switch this one's lines off
    other_host: tuple[str, dt.datetime] | None = None
    # whether this edge's active lines, machines or tags changed: not, when the other host
    # declared the same (the members of one MQTT shared subscription group, docs/scale.md)
    plant_changed: bool = True


def _calendar_json(cal: Calendar) -> str:
    return json.dumps(cal.model_dump(mode="json")["shifts"])


def sync_plant(
    conn: psycopg.Connection,
    cfg: ShopfloorConfig,
    now: dt.datetime | None = None,
    host: str | None = None,
) -> SyncReport:
    """Raises OwnershipConflict (nothing changed) when the config declares what another edge
    owns; syncs of several edges take turns (an advisory lock). `host`: this machine's name."""
    now = now or dt.datetime.now(dt.UTC)
    host = host or socket.gethostname()
    edge = cfg.settings.edge
    cycle_changes = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PLANT_SYNC_LOCK,))
        found = conflicts(conn, cfg)
        if found:
            raise OwnershipConflict(found)
        _sync_shared(conn, cfg)
        before = _declared(conn, edge)
        # What this edge owned (or nobody did, from before schema 8) goes inactive unless the
        # config declares it again below; other edges' lines are not touched.
        conn.execute("UPDATE lines SET active = false WHERE edge IS NULL OR edge = %s", (edge,))
        conn.execute("UPDATE machines SET active = false WHERE edge IS NULL OR edge = %s", (edge,))
        conn.execute(
            "UPDATE tags SET active = false WHERE machine_id IN "
            "(SELECT id FROM machines WHERE edge IS NULL OR edge = %s)",
            (edge,),
        )
        for line_position, line in enumerate(cfg.lines):
            conn.execute(
                "INSERT INTO lines (id, name, calendar, constraint_machine, output_machines, "
                "edge, position) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE "
                "SET name = EXCLUDED.name, calendar = EXCLUDED.calendar, "
                "constraint_machine = EXCLUDED.constraint_machine, "
                "output_machines = EXCLUDED.output_machines, edge = EXCLUDED.edge, "
                "position = EXCLUDED.position, active = true",
                (
                    line.id,
                    line.name,
                    line.calendar,
                    line.constraint,
                    line.outputs,
                    edge,
                    line_position,
                ),
            )
            for position, m in enumerate(line.machines):
                state_map = json.dumps({str(k): v.value for k, v in m.state_map.items()})
                conn.execute(
                    "INSERT INTO machines (id, line_id, name, position, state_map, stop_reasons, "
                    "edge) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                    "line_id = EXCLUDED.line_id, name = EXCLUDED.name, "
                    "position = EXCLUDED.position, state_map = EXCLUDED.state_map, "
                    "stop_reasons = EXCLUDED.stop_reasons, edge = EXCLUDED.edge, active = true",
                    (m.id, line.id, m.name, position, state_map, m.stop_reasons, edge),
                )
                current = conn.execute(
                    "SELECT ideal_cycle_s FROM machine_ideal_cycles WHERE machine_id = %s "
                    "ORDER BY valid_from DESC LIMIT 1",
                    (m.id,),
                ).fetchone()
                if current is None or current[0] != m.ideal_cycle_s:
                    # The first cycle time holds from the beginning of time; later ones from now.
                    valid_from = now if current else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
                    conn.execute(
                        "INSERT INTO machine_ideal_cycles (machine_id, valid_from, ideal_cycle_s) "
                        "VALUES (%s, %s, %s)",
                        (m.id, valid_from, m.ideal_cycle_s),
                    )
                    cycle_changes += current is not None
                _sync_units(conn, m.id, m.units_per_count, now)
        for source in cfg.sources:
            for tag in source.tags:
                is_count = tag.signal.is_count
                conn.execute(
                    "INSERT INTO tags (machine_id, name, signal, source, protocol, address, unit, "
                    "counter_mode, counter_wrap) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (machine_id, name) DO UPDATE SET signal = EXCLUDED.signal, "
                    "source = EXCLUDED.source, protocol = EXCLUDED.protocol, "
                    "address = EXCLUDED.address, unit = EXCLUDED.unit, "
                    "counter_mode = EXCLUDED.counter_mode, counter_wrap = EXCLUDED.counter_wrap, "
                    "active = true",
                    (
                        tag.machine,
                        tag.name,
                        tag.signal.value,
                        source.name,
                        source.protocol,
                        tag.reading_address,
                        tag.unit,
                        tag.counter if is_count else None,
                        tag.wrap if is_count else None,
                    ),
                )
        plant_changed = _declared(conn, edge) != before
        last = conn.execute("SELECT host, synced_at FROM edges WHERE name = %s", (edge,)).fetchone()
        conn.execute(
            "INSERT INTO edges (name, host, synced_at, revision, kpi) "
            "VALUES (%s, %s, %s, nextval('plant_revision'), %s) ON CONFLICT (name) DO UPDATE SET "
            "host = EXCLUDED.host, synced_at = EXCLUDED.synced_at, "
            "revision = EXCLUDED.revision, kpi = EXCLUDED.kpi",
            (edge, host, now, cfg.settings.kpi.model_dump_json()),
        )
    return SyncReport(
        lines=len(cfg.lines),
        machines=sum(len(line.machines) for line in cfg.lines),
        tags=len(cfg.tags()),
        cycle_changes=cycle_changes,
        other_host=(last[0], last[1]) if last is not None and last[0] != host else None,
        plant_changed=plant_changed,
    )


def _declared(conn: psycopg.Connection, edge: str) -> list[tuple[str, ...]]:
    """The edge's active tags with their machine and line, in order."""
    return conn.execute(
        "SELECT m.line_id, t.machine_id, t.name FROM tags t JOIN machines m ON m.id = t.machine_id "
        "JOIN lines l ON l.id = m.line_id WHERE m.edge = %s AND l.active AND m.active AND t.active "
        "ORDER BY 1, 2, 3",
        (edge,),
    ).fetchall()


def _sync_shared(conn: psycopg.Connection, cfg: ShopfloorConfig) -> None:
    """Calendars and stop reasons are plant-wide by name and code: this edge writes those it
    owns or nobody does (`conflicts` refused any other edge's that differ), and lets go of those
    it no longer declares."""
    edge = cfg.settings.edge
    for name, cal in cfg.calendars.items():
        conn.execute(
            "INSERT INTO calendars (name, timezone, shifts, edge) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET timezone = EXCLUDED.timezone, "
            "shifts = EXCLUDED.shifts, edge = EXCLUDED.edge "
            "WHERE calendars.edge IS NULL OR calendars.edge = EXCLUDED.edge",
            (name, cal.timezone, _calendar_json(cal), edge),
        )
    for reason in cfg.stop_reasons:
        conn.execute(
            "INSERT INTO stop_reasons (code, text, category, edge) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (code) DO UPDATE SET text = EXCLUDED.text, "
            "category = EXCLUDED.category, edge = EXCLUDED.edge "
            "WHERE stop_reasons.edge IS NULL OR stop_reasons.edge = EXCLUDED.edge",
            (reason.code, reason.text, reason.category.value, edge),
        )
    conn.execute(
        "UPDATE calendars SET edge = NULL WHERE edge = %s AND NOT name = ANY(%s::text[])",
        (edge, list(cfg.calendars)),
    )
    conn.execute(
        "UPDATE stop_reasons SET edge = NULL WHERE edge = %s AND NOT code = ANY(%s::int[])",
        (edge, [r.code for r in cfg.stop_reasons]),
    )


def _sync_units(conn: psycopg.Connection, machine_id: str, units: int, now: dt.datetime) -> None:
    """Append a changed units per count from `now` on (the past keeps the units valid then).
    A machine's first one holds from the beginning, and rollup rows made before it (one unit
    per count, migration 005) are rescaled to it."""
    current = conn.execute(
        "SELECT units_per_count FROM machine_units WHERE machine_id = %s "
        "ORDER BY valid_from DESC LIMIT 1",
        (machine_id,),
    ).fetchone()
    if current is not None and current[0] == units:
        return
    valid_from = now if current else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    conn.execute(
        "INSERT INTO machine_units (machine_id, valid_from, units_per_count) VALUES (%s, %s, %s)",
        (machine_id, valid_from, units),
    )
    if current is None and units != 1:
        for table in ("machine_minutes", "machine_hours"):
            conn.execute(
                f"UPDATE {table} SET good_units = good * %(u)s, reject_units = reject * %(u)s, "
                "total_units = total * %(u)s WHERE machine_id = %(m)s",
                {"u": units, "m": machine_id},
            )


def tag_ids(conn: psycopg.Connection) -> dict[tuple[str, str], list[int]]:
    """Active tag ids by (source, address), ascending: how readings map to tags. Several tags
    may share an address (one register, two signals); a reading belongs to each of them."""
    rows = conn.execute("SELECT source, address, id FROM tags WHERE active ORDER BY id").fetchall()
    ids: dict[tuple[str, str], list[int]] = {}
    for source, address, tag_id in rows:
        ids.setdefault((source, address), []).append(tag_id)
    return ids
