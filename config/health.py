"""The health report as /healthz answers it: the collector builds it, the API serves it (config
is the one package both may import). The types are the JSON itself, times as ISO 8601 text;
API-only (`shopfloor serve`) it holds status, problems and the database's `connected` and
`last_error`. typing_extensions' TypedDict: pydantic takes it for /healthz's schema.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict

Status = Literal["ok", "degraded", "failing"]


class DatabaseHealth(TypedDict):
    connected: bool
    last_error: str | None
    # with a collector:
    last_write: NotRequired[str | None]
    rows_written: NotRequired[int]
    duplicates: NotRequired[int]
    rejected: NotRequired[int]
    quarantined: NotRequired[int]
    outages: NotRequired[int]


class SpoolHealth(TypedDict):
    batches: int
    rows: int
    bytes: int
    budget_bytes: int
    oldest_age_s: float | None
    full: bool
    policy: Literal["block", "drop_oldest"]
    dropped_rows: int


class PipelineHealth(TypedDict):
    queued_rows: int
    capacity_rows: int
    batches: int
    spooled_rows: int
    replayed_rows: int
    lost_rows: int
    heartbeat_late: int
    taking_readings: bool


class RollupsHealth(TypedDict):
    last_run: str | None
    last_error: str | None


class TaskReport(TypedDict):
    running: bool
    critical: bool
    failures: int
    error: str | None
    failed_at: str | None


class SourceHealth(TypedDict):
    name: str
    protocol: str
    connected: bool
    last_reading: str | None
    readings: int
    readings_per_s: float
    errors: int
    last_error: str | None
    reconnects: int
    malformed: int
    unmapped: int
    filtered: int
    rejected: int
    missing_fields: dict[str, int]  # tag key -> messages that lacked its field (MQTT JSON)
    extra: dict[str, int]


class PlantHealth(TypedDict):
    """A central API's plant model, read from the database (api.plant_watch)."""

    lines: int
    edges: list[str]
    revision: int | None
    loaded_at: str | None
    last_error: str | None


class Health(TypedDict):
    status: Status
    problems: list[str]
    database: DatabaseHealth
    # with a collector:
    spool: NotRequired[SpoolHealth]
    pipeline: NotRequired[PipelineHealth]
    rollups: NotRequired[RollupsHealth]
    tasks: NotRequired[dict[str, TaskReport]]
    sources: NotRequired[list[SourceHealth]]
    # API-only over a central database:
    plant: NotRequired[PlantHealth]
