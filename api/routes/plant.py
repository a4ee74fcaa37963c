"""Lines and machines with each machine's current state."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Cfg, Conn, Engine, Now
from api.models import LineList, LineOut, MachineList, MachineOut
from api.plant import line_out, machine_out, reason_texts

router = APIRouter(tags=["plant"])


@router.get("/lines", response_model=LineList, summary="All lines with their machines")
async def list_lines(cfg: Cfg, conn: Conn, engine: Engine, now: Now) -> LineList:
    states = await engine.current_states(conn, now=now)
    lines = [line_out(engine.plant, line, states) for line in cfg.lines]
    return LineList(data=lines, count=len(lines))


@router.get("/lines/{line}", response_model=LineOut, summary="One line with its machines")
async def get_line(line: str, conn: Conn, engine: Engine, now: Now) -> LineOut:
    found = engine.plant.line(line)
    return line_out(engine.plant, found, await engine.current_states(conn, now=now))


@router.get("/machines", response_model=MachineList, summary="All machines, current state")
async def list_machines(cfg: Cfg, conn: Conn, engine: Engine, now: Now) -> MachineList:
    states = await engine.current_states(conn, now=now)
    texts = reason_texts(cfg)
    machines = [machine_out(ln, m, states, texts) for ln, m in cfg.machines().values()]
    return MachineList(data=machines, count=len(machines))


@router.get("/machines/{machine}", response_model=MachineOut, summary="One machine")
async def get_machine(machine: str, cfg: Cfg, conn: Conn, engine: Engine, now: Now) -> MachineOut:
    line, found = engine.plant.machine(machine)
    return machine_out(line, found, await engine.current_states(conn, now=now), reason_texts(cfg))
