"""The Grafana files of deploy/grafana as the tests read them: every SQL statement of the
dashboards (panel targets and variable queries), and running one as Grafana would."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml

from tests.deploy.grafana_macros import Query, expand

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "shopfloor.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "shopfloor.yaml"


@dataclass(frozen=True)
class Statement:
    """One SQL text of a dashboard: a panel's target or a variable's query."""

    dashboard: str
    where: str  # "panel <id>" or "variable <name>"
    sql: str


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def statements(path: Path) -> Iterator[Statement]:
    board = load(path)
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield Statement(path.name, f"panel {panel['id']}", target["rawSql"])
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            yield Statement(
                path.name,
                f"variable {var['name']}",
                query if isinstance(query, str) else query["rawSql"],
            )


def panel_sql(path: Path, panel_id: int) -> str:
    (panel,) = [p for p in load(path)["panels"] if p["id"] == panel_id]
    (target,) = panel["targets"]
    sql: str = target["rawSql"]
    return sql


def variable_sql(path: Path, name: str) -> str:
    (var,) = [v for v in load(path)["templating"]["list"] if v["name"] == name]
    sql: str = var["query"]
    return sql


def timescaledb_flag() -> bool:
    """Whether the provisioned data source is flagged TimescaleDB (it changes $__timeGroup)."""
    doc = yaml.safe_load(DATASOURCES.read_text())
    return bool(doc["datasources"][0]["jsonData"].get("timescaledb", False))


def run(
    url: str,
    sql: str,
    start: dt.datetime,
    end: dt.datetime,
    variables: Mapping[str, str],
    interval: str = "1m",
) -> list[dict[str, Any]]:
    """Rows of `sql` expanded as Grafana expands it for this range and these variables."""
    query = Query(start, end, variables, interval=interval, timescaledb=timescaledb_flag())
    with psycopg.connect(url) as conn:
        cur = conn.execute(expand(sql, query))  # type: ignore[arg-type]  # SQL built at run time
        assert cur.description is not None
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
