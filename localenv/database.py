"""Which database to use: an explicit URL, the config's (or SHOPFLOOR_DATABASE_URL), or the
private local cluster."""

from __future__ import annotations

from pathlib import Path

import psycopg

from config import ShopfloorConfig
from localenv.cluster import ClusterError, LocalCluster


def resolve_database_url(
    cfg: ShopfloorConfig | None = None, *, url: str | None = None, cluster_dir: Path | None = None
) -> str:
    if url:
        return url
    if cfg is not None and cfg.settings.database.url is not None:
        return cfg.settings.database.url.get_secret_value()
    cluster = LocalCluster.at(cluster_dir)
    if not cluster.password_file.exists():
        raise ClusterError(
            "no database configured: set settings.database.url or SHOPFLOOR_DATABASE_URL, or "
            "start the private one with `shopfloor db up`"
        )
    return cluster.url


def connect(url: str, **kwargs: object) -> psycopg.Connection:
    """Connect, translating failures to a message that names the server (password hidden)."""
    try:
        return psycopg.connect(url, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        info = psycopg.conninfo.conninfo_to_dict(url)
        where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        raise ClusterError(f"cannot connect to the database at {where}: {exc}") from exc
