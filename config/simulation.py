"""Options of the bundled PLC simulators (`simulation:` in the config file).

Only `shopfloor simulate`, the demo and the tests read this section; the collector ignores it.
Every duration here is in *simulated* seconds: the `speed` factor divides them on the wall clock
(docs/simulators.md, "Clock").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from config.bounds import Bounds, PlcCode, Probability, SimSeconds, Spread
from config.plant import Model

# A process value the simulator random-walks in (degC, bar, Pa …): finite and not astronomic.
ProcessValue = Annotated[float, Bounds(-1e9, 1e9)]


class Duration(Model):
    """A random duration: exponential (memoryless failures), uniform around a mean, or fixed."""

    distribution: Literal["exponential", "uniform", "fixed"] = "exponential"
    mean_s: SimSeconds = Field(description="mean duration, simulated seconds")
    spread: Spread = Field(default=0.5, description="uniform only: mean × (1 ± spread)")


class Range(Model):
    """Bounds of a process value; the simulator random-walks inside them."""

    min: ProcessValue
    max: ProcessValue

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class MachineSimulation(Model):
    """How one simulated machine behaves. Every field has a default that shows all states."""

    mtbf: Duration | None = Field(
        default_factory=lambda: Duration(mean_s=600),
        description="running time between failures; null: never fails",
    )
    mttr: Duration = Field(default_factory=lambda: Duration(mean_s=60))
    failure_reasons: list[PlcCode] | None = Field(
        default=None, description="codes drawn for failures; default: every failure-category code"
    )
    changeover_every: Duration | None = Field(
        default=None, description="running time between changeovers (setup); null: none"
    )
    changeover: Duration = Field(
        default_factory=lambda: Duration(mean_s=120, distribution="uniform")
    )
    changeover_reason: PlcCode | None = Field(default=None, description="default: first setup code")
    maintenance_every: Duration | None = Field(
        default=None, description="running time between planned maintenance stops; null: none"
    )
    maintenance: Duration = Field(
        default_factory=lambda: Duration(mean_s=300, distribution="fixed")
    )
    maintenance_reason: PlcCode | None = Field(
        default=None, description="default: first planned code"
    )
    starved_reason: PlcCode | None = Field(
        default=None,
        description="idle because the upstream buffer is empty; default: first idle code",
    )
    blocked_reason: PlcCode | None = Field(
        default=None,
        description="idle because the downstream buffer is full; default: second idle code",
    )
    reject_probability: Probability = 0.02
    speed_variation: Spread = Field(
        default=0.1, description="each cycle lasts ideal × (1 + U(0, variation))"
    )
    counter_start: Annotated[int, Bounds(0, 2**32 - 1)] = Field(
        default=0, description="counters' value at start (to see wraps soon)"
    )
    counter_bits: Literal[16, 32] | None = Field(
        default=None, description="counter width; default: the tag's wrap, else its register width"
    )
    counter_reset_at_s: list[Annotated[float, Bounds(0, 31_536_000, "s")]] = Field(
        default_factory=list,
        description="simulated seconds at which the PLC restarts (counters to 0)",
    )
    buffer_after: Annotated[int, Bounds(1, 1_000_000)] = Field(
        default=10, description="parts the buffer to the next machine holds"
    )
    consumes: Annotated[int, Bounds(1, 10_000)] = Field(
        default=1,
        description="upstream parts one cycle takes (a case packer: bottles per case)",
    )
    temperature: Range = Field(default_factory=lambda: Range(min=20.0, max=30.0))
    pressure: Range = Field(default_factory=lambda: Range(min=5.0, max=7.0))


class SimulationConfig(Model):
    seed: Annotated[int, Bounds(0, 2**63 - 1)] = 1
    speed: Annotated[float, Bounds(0.01, 10_000)] = Field(
        default=1.0, description="time compression; 60: a minute per second"
    )
    follow_calendar: bool = Field(
        default=True, description="breaks and off-shift time of the line's calendar -> planned_stop"
    )
    process_interval_s: Annotated[float, Bounds(0.1, 3600, "s")] = Field(
        default=5.0, description="simulated seconds between process value samples"
    )
    start: dt.datetime | None = Field(
        default=None, description="offline runs only: wall time of simulated second 0"
    )
    machines: dict[str, MachineSimulation] = Field(
        default_factory=dict, description="per machine id; machines not listed use the defaults"
    )
    opcua_certificate: Path | None = Field(
        default=None, description="server certificate (DER/PEM); default: generated at start"
    )
    opcua_private_key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> SimulationConfig:
        if (self.opcua_certificate is None) != (self.opcua_private_key is None):
            raise ValueError("opcua_certificate and opcua_private_key are given together")
        return self

    def machine(self, machine_id: str) -> MachineSimulation:
        return self.machines.get(machine_id) or MachineSimulation()
