"""The plant model: lines, machines, stop reasons and shift calendars.

These are the facts the KPI engine needs (KPI.md): which PLC state value means which time class,
each machine's ideal cycle time, and when production is planned.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

ID_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
Ident = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id: a-z, 0-9, _ and -")]


class Model(BaseModel):
    """Base for every config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Weekday(StrEnum):
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
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from exc
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]


def _parse_clock(value: object) -> object:
    # YAML 1.1 reads an unquoted 06:00 as the sexagesimal integer 360; accept that too.
    if isinstance(value, int) and not isinstance(value, bool):
        hours, minutes = divmod(value, 60)
        return dt.time(hours % 24, minutes)
    if isinstance(value, str) and re.fullmatch(r"24:00(:00)?", value):
        return dt.time(0, 0)
    return value


Clock = Annotated[
    dt.time, BeforeValidator(_parse_clock), Field(description="local wall-clock time HH:MM")
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
    code: int
    text: str
    category: ReasonCategory


class Machine(Model):
    id: Ident
    name: str | None = None
    ideal_cycle_s: float = Field(gt=0, description="ideal time for one part, in seconds")
    state_map: dict[int, StateClass] = Field(
        min_length=1, description="PLC state value -> time class of KPI.md"
    )
    stop_reasons: list[int] | None = Field(
        default=None, description="codes of the plant's stop reasons this machine reports"
    )


class Line(Model):
    id: Ident
    name: str | None = None
    calendar: str | None = Field(default=None, description="name of a calendar in `calendars`")
    constraint_machine: str | None = Field(
        default=None, description="the bottleneck; default: the last machine"
    )
    output_machines: list[str] | None = Field(
        default=None, description="machines whose good count is the line's; default: the last"
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
        return self

    @property
    def constraint(self) -> str:
        return self.constraint_machine or self.machines[-1].id

    @property
    def outputs(self) -> list[str]:
        return self.output_machines or [self.machines[-1].id]
