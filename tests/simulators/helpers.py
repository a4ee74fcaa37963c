"""Shared helpers of the simulator tests: demo configs on free ports, polling without timing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from config import DEMO_CONFIG, ShopfloorConfig, load_config
from config.simulation import MachineSimulation
from simulators import with_ports, with_simulation
from tests.services import free_port

HANG_GUARD_S = 20.0  # only against hangs; no test asserts how fast anything happens


def demo_config(mqtt_port: int | None = None, **machines: dict[str, Any]) -> ShopfloorConfig:
    """The demo line on free ports, calendar off (tests run at any hour), machine overrides."""
    cfg = load_config(DEMO_CONFIG)
    assert cfg.simulation is not None
    merged = {k: v.model_dump() for k, v in cfg.simulation.machines.items()}
    for machine, changes in machines.items():
        merged[machine] = MachineSimulation.model_validate({**merged.get(machine, {}), **changes})
    cfg = with_simulation(cfg, follow_calendar=False, machines=merged)
    ports = {
        "filler-plc": free_port(),
        "capper-labeler-plc": free_port(),
        "packer-gateway": mqtt_port or free_port(),
    }
    return with_ports(cfg, ports)


def port_of(cfg: ShopfloorConfig, source: str) -> int:
    src = next(s for s in cfg.sources if s.name == source)
    if hasattr(src, "endpoint"):
        return int(src.endpoint.rsplit(":", 1)[1].split("/")[0])
    return src.port


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], what: str, guard_s: float = HANG_GUARD_S
) -> Any:
    """Poll `check` until it returns a truthy value; fail (not time) only after the hang guard."""
    deadline = asyncio.get_running_loop().time() + guard_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def utc(ts: dt.datetime) -> dt.datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
