"""The plant model: lines, machines, stop reasons and shift calendars.

These are the facts the KPI engine needs (KPI.md): which PLC state value means which time class,
each machine's ideal cycle time, and when production is planned.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum, StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from config.bounds import Bounds, PlcCode

# Ids as plants write them (M1, FILLER-01, line_2, 4711): case-sensitive; docs/config.md, "Ids".
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"


def _id_as_text(value: object) -> object:
    """An id YAML read as a number or a boolean (`4711`, `010`, `NO`) is refused with the fix,
    not pydantic's "should be a valid string" (nor turned back into text: `010` became 8)."""
    if isinstance(value, bool | int | float):
        raise ValueError(f"YAML reads this as {value!r}, not as text: quote the id ('4711', 'NO')")
    return value


Ident = Annotated[
    str,
    BeforeValidator(_id_as_text),
    Field(
        pattern=ID_PATTERN,
        description="id: 1-63 letters, digits, _ and -, starting with a letter or digit",
    ),
]


class Model(BaseModel):
    """Base for every config model: unknown keys are errors, not silently ignored, and every
    float is finite (`.inf` as an ideal cycle time would make OEE silently 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StateClass(StrEnum):
    """Time classes of KPI.md §1."""

    RUNNING = "running"
    DOWN = "down"
    IDLE = "idle"
    SETUP = "setup"
    PLANNED_STOP = "planned_stop"


class ReasonCategory(StrEnum):
    """A stop reason's category decides the class of the interval it explains."""

    FAILURE = "failure"
    IDLE = "idle"
    SETUP = "setup"
    PLANNED = "planned"

    @property
    def state_class(self) -> StateClass:
        return {
            ReasonCategory.FAILURE: StateClass.DOWN,
            ReasonCategory.IDLE: StateClass.IDLE,
            ReasonCategory.SETUP: StateClass.SETUP,
            ReasonCategory.PLANNED: StateClass.PLANNED_STOP,
        }[self]


class Weekday(Enum):
    """A shift's day (an Enum, not a StrEnum: `index` would shadow `str.index`)."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def index(self) -> int:
        """Monday = 0, as `datetime.weekday()`."""
        return list(Weekday).index(self)


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a folder
        raise ValueError(
            f"unknown time zone {name[:60]!r} (use an IANA name like Europe/Berlin)"
        ) from exc
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_CLOCK_HELP = 'a clock time is "HH:MM" from 00:00 to 24:00'


def _parse_clock(value: object) -> object:
    """HH:MM (or HH:MM:SS) text, or the minutes YAML 1.1 reads an unquoted 06:00 as (360)."""
    if isinstance(value, bool | float):
        raise ValueError(f"{value!r} is not a clock time: {_CLOCK_HELP}")
    if isinstance(value, int):
        if not 0 <= value <= 24 * 60:
            raise ValueError(
                f"{value} is not a clock time: {_CLOCK_HELP} (YAML reads an unquoted 6:00 as "
                "360 minutes and 06:00:30 as 21630 seconds; write the time in quotes)"
            )
        hours, minutes = divmod(value, 60)
        return dt.time(hours % 24, minutes)
    if isinstance(value, str):
        return _parse_clock_text(value)
    return value


def _parse_clock_text(text: str) -> dt.time:
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text[:40]!r} is not a clock time: {_CLOCK_HELP}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if hours == 24 and minutes == seconds == 0:
        return dt.time(0, 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r} is not a clock time: {_CLOCK_HELP}")
    return dt.time(hours, minutes, seconds)


def _naive(clock: dt.time) -> dt.time:
    if clock.tzinfo is not None:
        raise ValueError("a clock time has no UTC offset: the calendar's timezone applies")
    return clock


Clock = Annotated[
    dt.time,
    BeforeValidator(_parse_clock),
    AfterValidator(_naive),
    Field(description="local wall-clock time HH:MM"),
]


class Break(Model):
    """A planned break inside a shift, in the calendar's local time."""

    name: str = "break"
    start: Clock
    end: Clock


class Shift(Model):
    """A shift on given weekdays; an end at or before the start means it ends the next day."""

    name: str
    days: list[Weekday] = Field(default_factory=lambda: list(Weekday)[:5], min_length=1)
    start: Clock
    end: Clock
    breaks: list[Break] = Field(default_factory=list)

    @property
    def duration(self) -> dt.timedelta:
        start = dt.datetime.combine(dt.date.min, self.start)
        end = dt.datetime.combine(dt.date.min, self.end)
        if end <= start:
            end += dt.timedelta(days=1)
        return end - start


class Calendar(Model):
    """When production is planned: weekly shifts with breaks, in one time zone."""

    timezone: TimeZoneName
    shifts: list[Shift] = Field(min_length=1)


class StopReason(Model):
    code: PlcCode
    text: str
    category: ReasonCategory


class Machine(Model):
    id: Ident
    name: str | None = None
    # 0.1 ms (36 million parts an hour) to a week: beyond either end it is a typo
    ideal_cycle_s: Annotated[float, Bounds(0.0001, 604800, "s")] = Field(
        description="ideal time for one part, in seconds"
    )
    # KPI.md §4: how many line units one count stands for (a case packer counting cases of 12
    # on a line counted in bottles: 12); the line's smallest unit is the line unit
    units_per_count: Annotated[int, Bounds(1, 1_000_000, "")] = Field(
        default=1, description="line units one of this machine's counts stands for (KPI.md §4)"
    )
    state_map: dict[PlcCode, StateClass] = Field(
        min_length=1, description="PLC state value -> time class of KPI.md"
    )
    stop_reasons: list[PlcCode] | None = Field(
        default=None, description="codes of the plant's stop reasons this machine reports"
    )

    @field_validator("state_map")
    @classmethod
    def _runs(cls, state_map: dict[int, StateClass]) -> dict[int, StateClass]:
        if StateClass.RUNNING not in state_map.values():
            raise ValueError(
                "no PLC value maps to running: the machine would never run (availability 0)"
            )
        return state_map


class Line(Model):
    id: Ident
    name: str | None = None
    calendar: str | None = Field(default=None, description="name of a calendar in `calendars`")
    constraint_machine: str | None = Field(
        default=None, description="the bottleneck; default: the last machine"
    )
    output_machines: list[str] | None = Field(
        default=None,
        min_length=1,
        description="machines whose good count is the line's; default: the last",
    )
    machines: list[Machine] = Field(min_length=1)

    @model_validator(mode="after")
    def _roles(self) -> Line:
        ids = [m.id for m in self.machines]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"machine ids must be unique within the line; repeated: {dup}")
        if self.constraint_machine is not None and self.constraint_machine not in ids:
            raise ValueError(
                f"constraint_machine {self.constraint_machine!r} is not a machine of this line"
            )
        for m in self.output_machines or []:
            if m not in ids:
                raise ValueError(f"output_machines: {m!r} is not a machine of this line")
        outputs = self.output_machines or []
        if len(set(outputs)) != len(outputs):
            raise ValueError("output_machines: a machine listed twice would count its parts twice")
        return self

    @property
    def constraint(self) -> str:
        return self.constraint_machine or self.machines[-1].id

    @property
    def outputs(self) -> list[str]:
        return self.output_machines or [self.machines[-1].id]
