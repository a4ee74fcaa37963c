"""Lines and machines with each machine's current state."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Response

from api.deps import Cfg, Engine, LineId, MachineId, Now, Results
from api.models import LineList, LineOut, MachineList, MachineOut
from api.plant import line_out, machine_out, reason_texts

router = APIRouter(tags=["plant"])


@router.get("/lines", response_model=LineList, summary="All lines with their machines")
async def list_lines(cfg: Cfg, engine: Engine, now: Now, results: Results) -> Response:
    async def compute(conn: psycopg.AsyncConnection) -> LineList:
        states = await engine.current_states(conn, now=now)
        lines = [line_out(engine.plant, line, states) for line in cfg.lines]
        return LineList(data=lines, count=len(lines))

    return await results.answer(compute)


@router.get("/lines/{line}", response_model=LineOut, summary="One line with its machines")
async def get_line(line: LineId, engine: Engine, now: Now, results: Results) -> Response:
    found = engine.plant.line(line)

    async def compute(conn: psycopg.AsyncConnection) -> LineOut:
        return line_out(engine.plant, found, await engine.current_states(conn, now=now))

    return await results.answer(compute)


@router.get("/machines", response_model=MachineList, summary="All machines, current state")
async def list_machines(cfg: Cfg, engine: Engine, now: Now, results: Results) -> Response:
    async def compute(conn: psycopg.AsyncConnection) -> MachineList:
        states = await engine.current_states(conn, now=now)
        texts = reason_texts(cfg)
        machines = [machine_out(ln, m, states, texts) for ln, m in cfg.machines().values()]
        return MachineList(data=machines, count=len(machines))

    return await results.answer(compute)


@router.get("/machines/{machine}", response_model=MachineOut, summary="One machine")
async def get_machine(
    machine: MachineId, cfg: Cfg, engine: Engine, now: Now, results: Results
) -> Response:
    line, found = engine.plant.machine(machine)

    async def compute(conn: psycopg.AsyncConnection) -> MachineOut:
        states = await engine.current_states(conn, now=now)
        return machine_out(line, found, states, reason_texts(cfg))

    return await results.answer(compute)
