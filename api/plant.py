"""The plant model as the API shows it: response objects, and a line's or machine's calendar.

Lines and machines are looked up in the KPI engine's `Plant` (built from the same configuration
the collector uses); only the current state of each machine is read from the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from api.models import CalendarRef, LineOut, MachineOut, MachineState, Window
from api.windows import MAX_KPI_WINDOW, MAX_RAW_SOURCE_WINDOW, WindowQuery, resolve_window
from config import ShopfloorConfig
from config.plant import Calendar, Line, Machine
from storage.engine import CurrentState, Kind, KpiEngine
from storage.engine.plant import Plant


def resolve_scope(
    plant: Plant,
    kind: Kind,
    ident: str,
    query: WindowQuery,
    now: dt.datetime,
    max_length: dt.timedelta = MAX_KPI_WINDOW,
    limit_for: str = "this route",
) -> tuple[Calendar | None, Window, list[str]]:
    """The calendar of a line (or of a machine's line), the window asked for, and the machines
    whose readings make the answer (the result cache's validity: late readings of any of them
    change it). An unknown id raises the engine's UnknownEntity before the window is checked;
    api.errors answers it with a 404 naming the path parameter."""
    line, machines = plant.members(kind, ident)
    cal = plant.calendar(line)
    w = resolve_window(query, cal, now, max_length=max_length, limit_for=limit_for)
    return cal, w, machines


def sourced_scope(
    engine: KpiEngine, kind: Kind, ident: str, query: WindowQuery, now: dt.datetime
) -> tuple[Calendar | None, Window, list[str]]:
    """`resolve_scope` for a route taking `source` (api.deps.SourceEngine): `source=raw` reads
    every sample of the window, so its windows are shorter."""
    if engine.use_rollups:
        return resolve_scope(engine.plant, kind, ident, query, now)
    return resolve_scope(engine.plant, kind, ident, query, now, MAX_RAW_SOURCE_WINDOW, "source=raw")


def reason_texts(cfg: ShopfloorConfig) -> dict[int, str]:
    return {r.code: r.text for r in cfg.stop_reasons}


def machine_state(state: CurrentState, texts: Mapping[int, str]) -> MachineState:
    return MachineState(
        since=state.since,
        time_class=state.time_class.value,
        reason_code=state.reason,
        reason_text=texts.get(state.reason) if state.reason is not None else None,
        short_stop=state.short_stop,
        value=state.value,
        sample_time=state.sample_time,
        stale=state.stale,
    )


def machine_out(
    line: Line, machine: Machine, states: Mapping[str, CurrentState], texts: Mapping[int, str]
) -> MachineOut:
    state = states.get(machine.id)
    return MachineOut(
        id=machine.id,
        name=machine.name,
        line=line.id,
        ideal_cycle_s=machine.ideal_cycle_s,
        units_per_count=machine.units_per_count,
        state=machine_state(state, texts) if state is not None else None,
    )


def line_out(plant: Plant, line: Line, states: Mapping[str, CurrentState]) -> LineOut:
    texts = reason_texts(plant.cfg)
    cal = plant.calendar(line)
    return LineOut(
        id=line.id,
        name=line.name,
        calendar=CalendarRef(name=line.calendar, timezone=cal.timezone)
        if cal is not None and line.calendar
        else None,
        constraint=line.constraint,
        outputs=list(line.outputs),
        machines=[machine_out(line, m, states, texts) for m in line.machines],
    )
