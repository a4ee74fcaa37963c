"""Numeric bounds of config fields, each with an error message that states the accepted range.

A bound is a `Bounds` inside `Annotated[...]`: `Annotated[float, Bounds(0.001, 86400, "s")]`.
Pydantic's own `ge`/`le` name one side only ("greater than 0"). The limits are what a plant can
mean, not what Python can hold (docs/config.md, "Numeric bounds", tables every bound and says
why). Bounds used by more than one field are named here, so each rule exists once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema


def _number(value: float) -> str:
    """A bound or a value as a person writes it: 86400, 0.001, 1e-09, 4294967295."""
    if isinstance(value, int):
        # YAML's base-60 integers (1:00:00:...) can be far too long to print or make a float
        return str(value) if value.bit_length() <= 128 else f"a {value.bit_length()}-bit number"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


@dataclass(frozen=True)
class Bounds:
    """An inclusive (or, with `lo_open`/`hi_open`, exclusive) range of a number; `hi` None:
    no upper end (floats are finite anyway: `Model` refuses inf and nan)."""

    lo: float
    hi: float | None
    unit: str = ""
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, value: float) -> bool:
        above = value > self.lo if self.lo_open else value >= self.lo
        if self.hi is None:
            return above
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def describe(self) -> str:
        """The accepted range in words, e.g. 'at least 0.001 s and at most 86400 s'."""
        unit = f" {self.unit}" if self.unit else ""
        lo = f"{'above' if self.lo_open else 'at least'} {_number(self.lo)}{unit}"
        if self.hi is None:
            return lo
        hi = f"{'below' if self.hi_open else 'at most'} {_number(self.hi)}{unit}"
        return f"{lo} and {hi}"

    def check(self, value: Any) -> Any:
        if self.contains(value):
            return value
        raise PydanticCustomError(
            "out_of_range",
            "{value} is out of range: must be {accepted}",
            {"value": _number(value), "accepted": self.describe()},
        )

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))


# Identifiers and wire fields whose width a protocol fixes.
Port = Annotated[int, Bounds(1, 65535)]
UnitId = Annotated[int, Bounds(0, 255)]  # Modbus unit (slave) id: one byte
# A PLC's state or stop-reason value: stored as a float, compared as an int, and stop reason
# codes are an `int` column in the database, so a signed 32-bit integer.
PlcCode = Annotated[int, Bounds(-(2**31), 2**31 - 1)]

# Cadences and waits. The lower ends keep a loop from spinning (1 ms still allows polling
# back to back, as the Modbus benchmark does); the upper ends catch minutes typed as seconds.
PollInterval = Annotated[float, Bounds(0.001, 86400, "s")]
Timeout = Annotated[float, Bounds(0.01, 600, "s")]
ReconnectDelay = Annotated[float, Bounds(0.01, 3600, "s")]

# Retention: shorter than a day drops data a spool replay still brings; 100 years is forever.
RetentionDays = Annotated[float, Bounds(1, 36500, "days")]

# The simulators' durations, in simulated seconds: from a tenth of a second to a year.
SimSeconds = Annotated[float, Bounds(0.1, 31_536_000, "s")]

# 0..1 fractions: probabilities (both ends included) and spreads (1 itself would reach zero).
Probability = Annotated[float, Bounds(0, 1)]
Spread = Annotated[float, Bounds(0, 1, hi_open=True)]
