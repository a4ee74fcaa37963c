"""What every tag has, whatever protocol delivers it: its machine, name and signal kind."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from config.bounds import Bounds
from config.plant import Ident, Model


class SignalKind(StrEnum):
    """How the KPI engine reads a tag (DESIGN.md data model)."""

    STATE = "state"
    STOP_REASON = "stop_reason"
    GOOD_COUNT = "good_count"
    REJECT_COUNT = "reject_count"
    TOTAL_COUNT = "total_count"
    MEASUREMENT = "measurement"

    @property
    def is_count(self) -> bool:
        return self in (SignalKind.GOOD_COUNT, SignalKind.REJECT_COUNT, SignalKind.TOTAL_COUNT)


class TagBase(Model):
    """Common tag fields; each protocol adds how to address the value."""

    machine: Ident
    name: Ident
    signal: SignalKind = SignalKind.MEASUREMENT
    unit: str | None = None
    counter: Literal["cumulative", "delta"] = Field(
        default="cumulative",
        description="count tags: a running PLC counter, or one increment per message",
    )
    wrap: Annotated[int, Bounds(2, 2**64)] | None = Field(
        default=None,
        description="cumulative counters: modulus the PLC counter wraps at (65536, 4294967296)",
    )

    deadband: Annotated[float, Bounds(0, None)] | None = Field(
        default=None,
        description="measurements: store a value only when it moved more than this from the "
        "last stored one (store on change); unset: store every reading",
    )
    heartbeat_s: Annotated[float, Bounds(0.1, 86400, "s")] | None = Field(
        default=None,
        description="with deadband: store the value at least this often even when unchanged",
    )

    @model_validator(mode="after")
    def _count_options(self) -> TagBase:
        if not self.signal.is_count and (self.counter != "cumulative" or self.wrap is not None):
            raise ValueError("counter and wrap apply only to count signals")
        if self.counter == "delta" and self.wrap is not None:
            raise ValueError("wrap applies only to cumulative counters")
        if self.signal is not SignalKind.MEASUREMENT and (
            self.deadband is not None or self.heartbeat_s is not None
        ):
            raise ValueError(
                f"deadband and heartbeat_s apply only to measurements: {self.signal} tags are "
                "never filtered (KPIs need every count and state change)"
            )
        if self.heartbeat_s is not None and self.deadband is None:
            raise ValueError("heartbeat_s needs deadband: without it every reading is stored")
        return self

    @property
    def key(self) -> str:
        """Plant-wide tag key, `machine.name`."""
        return f"{self.machine}.{self.name}"

    @property
    def reading_address(self) -> str:
        """The address the adapter puts on this tag's readings; each protocol defines it."""
        raise NotImplementedError

    @property
    def read_options(self) -> dict[str, object]:
        """Options that shape the reading but are not in `reading_address`: tags that share an
        address are read once, so they must agree on these (`shopfloor check` says so)."""
        return {}
