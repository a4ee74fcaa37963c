"""Process settings: where the database is, how the API listens, KPI time-model parameters.

Every field can be overridden by an environment variable SHOPFLOOR_<SECTION>_<FIELD>
(e.g. SHOPFLOOR_DATABASE_URL, SHOPFLOOR_API_PORT); see `config.loader`.
"""

from __future__ import annotations

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


class Settings(Model):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
