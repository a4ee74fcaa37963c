"""Process settings: where the database is, how the API listens, KPI time-model parameters.

Every field can be overridden by an environment variable SHOPFLOOR_<SECTION>_<FIELD>
(e.g. SHOPFLOOR_DATABASE_URL, SHOPFLOOR_API_PORT, SHOPFLOOR_API_KEYS comma-separated); see
`config.loader`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator

from config.bounds import Bounds, Port, RetentionDays
from config.plant import Ident, Model

_PLACEHOLDERS = {"changeme", "change-me", "secret"}
_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


def _conninfo(url: SecretStr) -> dict[str, str]:
    """libpq's reading of a URL or key=value string; ValueError without echoing the secret."""
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    text = url.get_secret_value()
    if not text.strip() or "\0" in text:
        raise ValueError("an empty URL or one with a NUL character; unset: the private cluster")
    try:
        return {k: str(v) for k, v in conninfo_to_dict(text).items()}
    except Error as exc:
        reason = re.sub(r'"[^"]{2,}"', '"…"', str(exc).strip())
        raise ValueError(
            "not a PostgreSQL URL (postgresql://user:password@host:port/dbname) nor a "
            f"key=value connection string: {reason}"
        ) from None


def _database_url(url: SecretStr | None) -> SecretStr | None:
    if url is None:
        return None
    ports = _conninfo(url).get("port", "")
    for port in filter(None, ports.split(",")):
        if not (port.isascii() and port.isdigit() and Bounds(1, 65535).contains(int(port))):
            raise ValueError(f"port {port[:10]!r}: a port is 1 to 65535")
    return url


def _comma_separated(value: object) -> object:
    """A list given as one string, as SHOPFLOOR_API_KEYS gives it: its comma-separated items."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _api_key(key: SecretStr) -> SecretStr:
    secret = key.get_secret_value()
    if any(c.isspace() for c in secret):
        raise ValueError("an API key holds no spaces or other whitespace")
    if not re.fullmatch(r"[\x21-\x7e]{16,1024}", secret) or secret.lower() in _PLACEHOLDERS:
        raise ValueError(
            "an API key is 16 to 1024 visible ASCII characters (it travels in an HTTP header), "
            "and not a placeholder"
        )
    return key


class DatabaseSettings(Model):
    url: Annotated[SecretStr | None, AfterValidator(_database_url)] = Field(
        default=None,
        description="postgresql://user:pass@host:port/db or key=value; unset: the private "
        "local cluster",
    )
    pool_size: Annotated[int, Bounds(1, 64)] = 4

    def security_warnings(self) -> list[tuple[str, str]]:
        """(key path below settings.database, message) where traffic is left unencrypted."""
        if self.url is None:
            return []
        info = _conninfo(self.url)
        hosts = [h for h in info.get("host", "").split(",") if not h.startswith("/")]
        remote = [h for h in hosts if h.lower() not in _LOCAL_HOSTS]
        if info.get("sslmode") in ("disable", "allow") and remote:
            return [
                (
                    "url",
                    f"sslmode={info['sslmode']} to {remote[0]}: readings and the password "
                    "cross the network unencrypted",
                )
            ]
        return []


class ApiSettings(Model):
    host: str = "127.0.0.1"
    port: Port = 8080
    api_keys: Annotated[
        list[Annotated[SecretStr, AfterValidator(_api_key)]], BeforeValidator(_comma_separated)
    ] = Field(
        default_factory=list, description="bearer tokens; none: the API binds to 127.0.0.1 only"
    )
    cache_s: Annotated[float, Bounds(0, 60, "s")] = Field(
        default=1.0,
        description="results of windows that reach (close to) now are shared between requests "
        "for this long; 0: not cached (past windows stay cached until late data arrives)",
    )


class KpiSettings(Model):
    """Parameters of KPI.md's time model."""

    max_gap_s: Annotated[float, Bounds(1, 86400, "s")] = Field(
        default=60, description="longer silence of a state tag: unknown"
    )
    heartbeat_s: Annotated[float, Bounds(1, 3600, "s")] = Field(
        default=30, description="state tags re-recorded this often"
    )
    short_stop_s: Annotated[float, Bounds(0, 3600, "s")] = Field(
        default=120, description="shorter stops: performance loss"
    )

    @model_validator(mode="after")
    def _heartbeat_below_gap(self) -> KpiSettings:
        if self.heartbeat_s >= self.max_gap_s:
            raise ValueError("heartbeat_s must be below max_gap_s, or steady states read as gaps")
        return self


class CollectorSettings(Model):
    """The pipeline from adapters to the database, and the spool that covers outages."""

    batch_rows: Annotated[int, Bounds(1, 1_000_000)] = Field(
        default=5000, description="a batch is written at this size"
    )
    batch_age_ms: Annotated[float, Bounds(0, 60_000, "ms")] = Field(
        default=250, description="... or when its oldest reading is this old"
    )
    queue_rows: Annotated[int, Bounds(1, 10_000_000)] = Field(
        default=100_000, description="readings held in memory; beyond: backpressure"
    )
    write_timeout_s: Annotated[float, Bounds(1, 3600, "s")] = Field(
        default=60,
        description="a batch (or a connect) the database has not answered within this goes to "
        "the spool, as in an outage: a link that drops packets closes nothing",
    )
    spool_dir: Path | None = Field(
        default=None, description="store-and-forward spool; unset: <data dir>/spool"
    )
    # from 10 KiB, a budget that still holds a small batch (tests fill one on purpose)
    spool_max_mb: Annotated[float, Bounds(0.01, 10_000_000, "MB")] = Field(
        default=1024, description="disk budget of the spool"
    )
    spool_on_full: Literal["block", "drop_oldest"] = Field(
        default="block",
        description="at the budget: stop accepting readings (MQTT stays unacknowledged, "
        "polls pause), or delete the oldest spooled batches (counted and logged)",
    )
    # at least a day: a shorter limit rejects what the spool replays after an ordinary outage
    max_reading_age_days: Annotated[float, Bounds(1, 3650, "days")] = Field(
        default=30,
        description="a reading stamped longer ago than this when it arrives is rejected (kept "
        "in rejected_readings): a PLC clock reset to 1970, say; long enough for a spool replay "
        "or a gateway's buffered history",
    )
    max_reading_lead_s: Annotated[float, Bounds(0, 86400, "s")] = Field(
        default=600,
        description="a reading stamped further ahead of the collector's clock than this is "
        "rejected (a PLC clock running ahead, or a wrong time zone)",
    )


class RollupSettings(Model):
    interval_s: Annotated[float, Bounds(1, 3600, "s")] = Field(
        default=10, description="how often rollups catch up"
    )


class RetentionSettings(Model):
    raw_days: RetentionDays | None = Field(default=90, description="raw readings; null: forever")
    rollup_days: RetentionDays | None = Field(default=730, description="rollups; null: forever")
    interval_s: Annotated[float, Bounds(60, 86400, "s")] = Field(
        default=3600, description="how often old chunks are dropped"
    )

    @model_validator(mode="after")
    def _rollups_outlive_raw(self) -> RetentionSettings:
        if self.rollup_days is not None and (
            self.raw_days is None or self.rollup_days < self.raw_days
        ):
            raise ValueError("rollup_days must be at least raw_days: KPIs need rollups or raw")
        return self


class Settings(Model):
    edge: Ident = Field(
        default="default",
        description="this collector's name on a shared database: what it declares is its own",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    rollups: RollupSettings = Field(default_factory=RollupSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
