"""Process settings: where the database is, how the API listens, KPI time-model parameters.

Every field can be overridden by an environment variable SHOPFLOOR_<SECTION>_<FIELD>
(e.g. SHOPFLOOR_DATABASE_URL, SHOPFLOOR_API_PORT); see `config.loader`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from config.plant import Model


class DatabaseSettings(Model):
    url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:pass@host:port/db; unset: the private local cluster",
    )
    pool_size: int = Field(default=4, ge=1, le=64)


class ApiSettings(Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    api_keys: list[SecretStr] = Field(
        default_factory=list, description="bearer tokens; none: the API binds to 127.0.0.1 only"
    )
    cache_s: float = Field(
        default=1.0,
        ge=0,
        description="results of windows that reach (close to) now are shared between requests "
        "for this long; 0: not cached (past windows stay cached until late data arrives)",
    )

    @model_validator(mode="after")
    def _keys_are_real(self) -> ApiSettings:
        for key in self.api_keys:
            secret = key.get_secret_value()
            if len(secret) < 16 or secret.lower() in {"changeme", "change-me", "secret"}:
                raise ValueError(
                    "api_keys: each key must be at least 16 characters and not a placeholder"
                )
        return self


class KpiSettings(Model):
    """Parameters of KPI.md's time model."""

    max_gap_s: float = Field(default=60, gt=0, description="longer silence of a state tag: unknown")
    heartbeat_s: float = Field(default=30, gt=0, description="state tags re-recorded this often")
    short_stop_s: float = Field(default=120, ge=0, description="shorter stops: performance loss")

    @model_validator(mode="after")
    def _heartbeat_below_gap(self) -> KpiSettings:
        if self.heartbeat_s >= self.max_gap_s:
            raise ValueError("heartbeat_s must be below max_gap_s, or steady states read as gaps")
        return self


class CollectorSettings(Model):
    """The pipeline from adapters to the database, and the spool that covers outages."""

    batch_rows: int = Field(default=5000, ge=1, description="a batch is written at this size")
    batch_age_ms: float = Field(
        default=250, ge=0, description="... or when its oldest reading is this old"
    )
    queue_rows: int = Field(
        default=100_000, ge=1, description="readings held in memory; beyond: backpressure"
    )
    spool_dir: Path | None = Field(
        default=None, description="store-and-forward spool; unset: <data dir>/spool"
    )
    spool_max_mb: float = Field(default=1024, gt=0, description="disk budget of the spool")
    spool_on_full: Literal["block", "drop_oldest"] = Field(
        default="block",
        description="at the budget: stop accepting readings (MQTT stays unacknowledged, "
        "polls pause), or delete the oldest spooled batches (counted and logged)",
    )
    max_reading_age_days: float = Field(
        default=30,
        gt=0,
        description="a reading stamped longer ago than this when it arrives is rejected (kept "
        "in rejected_readings): a PLC clock reset to 1970, say; long enough for a spool replay "
        "or a gateway's buffered history",
    )
    max_reading_lead_s: float = Field(
        default=600,
        ge=0,
        description="a reading stamped further ahead of the collector's clock than this is "
        "rejected (a PLC clock running ahead, or a wrong time zone)",
    )


class RollupSettings(Model):
    interval_s: float = Field(default=10, gt=0, description="how often rollups catch up")


class RetentionSettings(Model):
    raw_days: float | None = Field(default=90, gt=0, description="raw readings; null: forever")
    rollup_days: float | None = Field(default=730, gt=0, description="rollups; null: forever")
    interval_s: float = Field(default=3600, gt=0, description="how often old chunks are dropped")

    @model_validator(mode="after")
    def _rollups_outlive_raw(self) -> RetentionSettings:
        if self.rollup_days is not None and (
            self.raw_days is None or self.rollup_days < self.raw_days
        ):
            raise ValueError("rollup_days must be at least raw_days: KPIs need rollups or raw")
        return self


class Settings(Model):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    rollups: RollupSettings = Field(default_factory=RollupSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
