"""The plant model as the database holds it: every active line of every edge, for an API that
serves a central database without a config repeating them (docs/scale.md).

The lines, machines, calendars and stop reasons come back as the config's own models, so the
KPI engine runs on them exactly as on a config; each machine's ideal cycle time and units per
count are its latest (the engine reads their histories from the database anyway).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from config.plant import Calendar, Line, Machine, StopReason
from config.settings import KpiSettings


@dataclass(frozen=True)
class PlantModel:
    revision: int  # plant_revision when read: the model changes only when this moves
    lines: list[Line]
    calendars: dict[str, Calendar]
    stop_reasons: list[StopReason]
    edge_kpi: dict[str, KpiSettings]  # each edge's settings.kpi at its last sync


async def revision(conn: psycopg.AsyncConnection) -> int:
    """Moves at every sync and release of any edge; cheap to ask every few seconds. 0 until
    the first sync (a fresh sequence's last_value is already 1, as after the first nextval)."""
    cur = await conn.execute(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM plant_revision"
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


_MACHINES = """
SELECT m.line_id, m.id, m.name, m.state_map, m.stop_reasons,
       (SELECT ideal_cycle_s FROM machine_ideal_cycles c WHERE c.machine_id = m.id
        ORDER BY valid_from DESC LIMIT 1),
       coalesce((SELECT units_per_count FROM machine_units u WHERE u.machine_id = m.id
                 ORDER BY valid_from DESC LIMIT 1), 1)
FROM machines m JOIN lines l ON l.id = m.line_id
WHERE m.active AND l.active
ORDER BY m.line_id, m.position
"""


async def load(conn: psycopg.AsyncConnection) -> PlantModel:
    """One consistent read (a repeatable-read snapshot) of the active plant. Ends what the
    connection had open (a read only): the snapshot must be this transaction's own."""
    await conn.rollback()
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        rev = await revision(conn)
        machines: dict[str, list[Machine]] = {}
        for line_id, mid, name, state_map, reasons, cycle, units in await _rows(conn, _MACHINES):
            machines.setdefault(line_id, []).append(
                Machine(
                    id=mid,
                    name=name,
                    ideal_cycle_s=cycle,
                    units_per_count=units,
                    state_map=_json(state_map),
                    stop_reasons=reasons,
                )
            )
        lines = [
            Line(
                id=line_id,
                name=name,
                calendar=calendar,
                constraint_machine=constraint,
                output_machines=outputs,
                machines=machines[line_id],
            )
            for line_id, name, calendar, constraint, outputs in await _rows(
                conn,
                "SELECT id, name, calendar, constraint_machine, output_machines FROM lines "
                "WHERE active ORDER BY edge, position, id",
            )
            if line_id in machines
        ]
        calendars = {
            name: Calendar(timezone=tz, shifts=_json(shifts))
            for name, tz, shifts in await _rows(
                conn, "SELECT name, timezone, shifts FROM calendars ORDER BY name"
            )
        }
        reasons = [
            StopReason(code=code, text=text, category=category)
            for code, text, category in await _rows(
                conn, "SELECT code, text, category FROM stop_reasons ORDER BY code"
            )
        ]
        edge_kpi = {
            name: KpiSettings.model_validate(_json(kpi))
            for name, kpi in await _rows(conn, "SELECT name, kpi FROM edges ORDER BY name")
        }
    return PlantModel(rev, lines, calendars, reasons, edge_kpi)


async def _rows(conn: psycopg.AsyncConnection, sql: str) -> list[tuple[Any, ...]]:
    cur = await conn.execute(sql)
    return await cur.fetchall()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
