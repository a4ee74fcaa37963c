"""The plant model as the API shows it: response objects, and a line's or machine's calendar.

Lines and machines are looked up in the KPI engine's `Plant` (built from the same configuration
the collector uses); only the current state of each machine is read from the database.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.models import CalendarRef, LineOut, MachineOut, MachineState
from config import ShopfloorConfig
from config.plant import Calendar, Line, Machine
from storage.engine import CurrentState, Kind
from storage.engine.plant import Plant


def calendar_of(plant: Plant, kind: Kind, ident: str) -> Calendar | None:
    """The calendar of a line, or of a machine's line; an unknown id raises the engine's
    UnknownEntity, which api.errors answers with a 404 naming the path parameter."""
    line = plant.line(ident) if kind == "line" else plant.machine(ident)[0]
    return plant.calendar(line)


def machine_ids(plant: Plant, kind: Kind, ident: str) -> list[str]:
    """The machines whose readings make a line's or a machine's KPIs (the result cache's
    validity: late readings of any of them change the answer)."""
    if kind == "line":
        return [m.id for m in plant.line(ident).machines]
    plant.machine(ident)
    return [ident]


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
