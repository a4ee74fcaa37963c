"""The plant model as the API shows it: lookups that 404 with the name, and response objects.

Lines and machines come from the configuration object (the same one the collector and the KPI
engine use); only the current state of each machine is read from the database.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.errors import NotFound
from api.models import CalendarRef, LineOut, MachineOut, MachineState
from config import ShopfloorConfig
from config.plant import Calendar, Line, Machine
from storage.engine import CurrentState


def find_line(cfg: ShopfloorConfig, line_id: str) -> Line:
    for line in cfg.lines:
        if line.id == line_id:
            return line
    raise NotFound(f"no line {line_id!r}", ["path", "line"])


def find_machine(cfg: ShopfloorConfig, machine_id: str) -> tuple[Line, Machine]:
    found = cfg.machines().get(machine_id)
    if found is None:
        raise NotFound(f"no machine {machine_id!r}", ["path", "machine"])
    return found


def line_calendar(cfg: ShopfloorConfig, line: Line) -> Calendar | None:
    return cfg.calendars.get(line.calendar) if line.calendar else None


def machine_calendar(cfg: ShopfloorConfig, machine_id: str) -> Calendar | None:
    line, _ = find_machine(cfg, machine_id)
    return line_calendar(cfg, line)


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


def line_out(cfg: ShopfloorConfig, line: Line, states: Mapping[str, CurrentState]) -> LineOut:
    texts = reason_texts(cfg)
    cal = line_calendar(cfg, line)
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
