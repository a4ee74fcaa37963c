"""Response models of the HTTP API: what /docs shows and what every route returns.

Field names of KPIs are KPI.md's. Every instant is an aware datetime normalised to UTC, so it
is serialised ISO 8601 with `Z`; windows are half-open [start, end).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]

TimeClassName = Literal["running", "down", "idle", "setup", "planned_stop", "unknown"]
DowntimeClass = Literal["down", "idle", "setup", "planned_stop", "short_stop"]


class ApiModel(BaseModel):
    # from_attributes: TagOut.model_validate(row) takes a query's row field by field
    model_config = ConfigDict(frozen=True, from_attributes=True, serialize_by_alias=True)


# --- errors -----------------------------------------------------------------------------------


class ProblemDetail(ApiModel):
    loc: list[str | int] = Field(description='where, e.g. ["query", "start"]')
    msg: str = Field(description="what is wrong there")
    type: str = Field(description="machine-readable kind, e.g. missing, value_error")


class ErrorBody(ApiModel):
    status: int = Field(description="the HTTP status, repeated")
    code: str = Field(description="not_found, invalid_parameter, unauthorized, ...")
    message: str = Field(description="one sentence for a human")
    detail: list[ProblemDetail] = Field(default_factory=list)


class ErrorResponse(ApiModel):
    error: ErrorBody


# --- plant ------------------------------------------------------------------------------------


class Window(ApiModel):
    """The window a result covers, echoed so a default window is visible."""

    start: UtcDatetime
    end: UtcDatetime
    shift: str | None = Field(
        default=None, description="name of the shift when the window defaulted to one"
    )
    defaulted: bool = Field(description="true when start/end were not given")


class MachineState(ApiModel):
    """The machine's state now: the current interval of its timeline and the last sample."""

    since: UtcDatetime | None = Field(
        description="when the current interval began; null when no state was ever recorded"
    )
    time_class: TimeClassName = Field(
        serialization_alias="class",
        description="unknown when the last state sample is older than max_gap_s",
    )
    reason_code: int | None
    reason_text: str | None
    short_stop: bool = Field(description="a stop in progress, shorter than short_stop_s so far")
    value: float | None = Field(description="the last PLC state value")
    sample_time: UtcDatetime | None = Field(description="time of the last state sample")
    stale: bool = Field(description="no state sample for longer than max_gap_s: may be outdated")


class MachineOut(ApiModel):
    id: str
    name: str | None
    line: str
    ideal_cycle_s: float
    units_per_count: int = Field(
        description="line units one count stands for: the line's counts are in line units"
    )
    state: MachineState | None = Field(description="null when the machine never sent a state")


class MachineList(ApiModel):
    data: list[MachineOut]
    count: int


class CalendarRef(ApiModel):
    name: str
    timezone: str


class LineOut(ApiModel):
    id: str
    name: str | None
    calendar: CalendarRef | None
    constraint: str = Field(description="the constraint (bottleneck) machine")
    outputs: list[str] = Field(description="machines whose good count is the line's")
    machines: list[MachineOut]


class LineList(ApiModel):
    data: list[LineOut]
    count: int


# --- KPIs -------------------------------------------------------------------------------------


class KpisOut(ApiModel):
    """KPI.md fields: seconds, counts, fractions (0.88, not 88 %); null where undefined."""

    planned_time_s: float
    planned_stop_s: float
    unknown_time_s: float
    planned_busy_time_s: float
    unscheduled_run_s: float
    run_time_s: float
    short_stop_s: float
    down_time_s: float
    idle_time_s: float
    setup_time_s: float
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    throughput_per_hour: float | None
    scrap_ratio: float | None
    mtbf_s: float | None
    mttr_s: float | None
    good_count: int | None
    reject_count: int | None
    total_count: int | None
    failure_events: int
    flags: list[str]
    flag_counts: dict[str, int]


class MachineKpis(ApiModel):
    machine: str
    window: Window
    kpis: KpisOut


class LineKpis(ApiModel):
    line: str
    window: Window
    kpis: KpisOut
    machines: dict[str, KpisOut] = Field(description="each machine's own KPIs in the window")


class SeriesPoint(ApiModel):
    start: UtcDatetime
    end: UtcDatetime
    label: str | None = Field(description="shift name for bucket=shift; null otherwise")
    kpis: KpisOut


class KpiSeries(ApiModel):
    kind: Literal["line", "machine"]
    id: str
    bucket: str
    window: Window
    points: list[SeriesPoint] = Field(description="buckets tiling the window; sums add up")


class TimelineInterval(ApiModel):
    start: UtcDatetime
    end: UtcDatetime
    time_class: TimeClassName = Field(serialization_alias="class")
    reason_code: int | None
    reason_text: str | None
    short_stop: bool


class Timeline(ApiModel):
    machine: str
    window: Window
    intervals: list[TimelineInterval]


class DowntimeRow(ApiModel):
    """Stop time of one (reason, class) pair inside productive calendar time."""

    reason_code: int | None = Field(description="null: the PLC gave no (known) reason")
    reason_text: str | None
    category: str | None = Field(description="the reason's category: failure, idle, setup, planned")
    time_class: DowntimeClass = Field(serialization_alias="class")
    duration_s: float
    events: int
    share: float = Field(description="fraction of all rows' duration; 0 without stop time")


class Downtime(ApiModel):
    kind: Literal["line", "machine"]
    id: str
    window: Window
    rows: list[DowntimeRow] = Field(description="longest first")


# --- tags -------------------------------------------------------------------------------------


class TagOut(ApiModel):
    machine: str
    name: str
    signal: str
    unit: str | None
    counter: str | None = Field(description="count tags: cumulative or delta")
    wrap: int | None
    source: str
    protocol: str
    address: str
    active: bool


class TagList(ApiModel):
    data: list[TagOut]
    count: int


class TagBucket(ApiModel):
    start: UtcDatetime
    value: float | None = Field(description="the aggregate of the bucket's non-null values")
    samples: int = Field(description="readings with a value in the bucket")


class TagSeries(ApiModel):
    machine: str
    tag: str
    unit: str | None
    bucket: str
    agg: Literal["avg", "min", "max", "last"]
    window: Window
    points: list[TagBucket] = Field(description="buckets holding at least one reading")


class RawReading(ApiModel):
    time: UtcDatetime
    value: float | None
    quality: int
    text: str | None


class TagRaw(ApiModel):
    machine: str
    tag: str
    unit: str | None
    window: Window
    limit: int
    readings: list[RawReading]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )
