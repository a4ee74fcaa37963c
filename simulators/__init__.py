"""Bundled PLC simulators: a deterministic line model behind OPC UA, Modbus TCP and MQTT.

Public API (see docs/simulators.md):

    async with run_simulators(cfg, speed=60, seed=7, truth_path="truth.jsonl") as sims:
        ...

`SimulatorThread` runs the same from synchronous code; `simulate` runs the model offline;
`simulators.truth` computes ground-truth times and counts from a truth file.
"""

from simulators.model import Clock, LineModel, SimulationError, simulate
from simulators.runner import (
    Simulators,
    SimulatorThread,
    run_simulators,
    with_ports,
    with_simulation,
)

__all__ = [
    "Clock",
    "LineModel",
    "SimulationError",
    "SimulatorThread",
    "Simulators",
    "run_simulators",
    "simulate",
    "with_ports",
    "with_simulation",
]
