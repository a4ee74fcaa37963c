"""ModbusAdapter against the bundled demo simulator (capper CDAB on unit 1, labeler ABCD on 2).

The simulator encodes with its own code, so agreeing with it checks our codec from outside: a
wrong word order turns 35.2 degC into nonsense, a wrong unit id reads the other machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from adapters.base import Quality, Reading
from adapters.modbus import ModbusAdapter
from config import DEMO_CONFIG, load_config
from config.sources.modbus import ModbusSource
from simulators import run_simulators, with_ports, with_simulation
from tests.services import eventually, free_port


async def test_demo_register_map_decodes_to_plausible_machine_values() -> None:
    cfg = load_config(DEMO_CONFIG, env={})
    cfg = with_simulation(cfg, follow_calendar=False)
    cfg = with_ports(cfg, {"capper-labeler-plc": free_port()})
    source = next(s for s in cfg.sources if isinstance(s, ModbusSource))
    cfg = cfg.model_copy(update={"sources": [source]})  # only the Modbus server is needed
    source = source.model_copy(update={"poll_interval_s": 0.1})
    machines = cfg.simulation.machines  # type: ignore[union-attr]
    codes = {r.code for r in cfg.stop_reasons}
    latest: dict[str, Reading] = {}

    async def sink(batch: Sequence[Reading]) -> None:
        latest.update((r.address, r) for r in batch)

    adapter = ModbusAdapter(source, sink)
    async with run_simulators(cfg, speed=60):
        task = asyncio.create_task(adapter.run())
        try:
            await eventually(lambda: len(latest) == len(source.tags), what="every demo tag")
        finally:
            await adapter.stop()
            await task
    for tag in source.tags:
        reading = latest[tag.reading_address]
        assert reading.quality == Quality.GOOD and reading.value is not None, tag.key
        value = reading.value
        limits = getattr(machines[tag.machine], tag.name, None)
        if tag.name == "state":
            assert value in {0, 1, 2, 3, 4}, tag.key
        elif tag.name == "stop_reason":  # 0: no reason, while running (docs/kpi.md)
            assert value == 0 or value in codes, tag.key
        elif tag.signal.is_count:
            assert value.is_integer() and 0 <= value < 2**32, tag.key
        elif tag.name == "running":
            assert value in (0.0, 1.0), tag.key
        elif limits is not None:  # temperature and pressure lie in the simulated range
            assert limits.min <= value <= limits.max, (tag.key, value)
        else:
            raise AssertionError(f"{tag.key}: no check for this demo tag")
