"""deploy/grafana: the provisioning files, and every SQL statement of the dashboard run against
a real database (expanded as Grafana expands it, tests/deploy/grafana_macros.py) with figures
equal to the API's for the same window.

Data: the API tests' plant (KPI.md examples A, B, D and E as lines with shift calendars and
breaks, tests/api/plant.py) written through the batch writer, rollups refreshed at 16:00, the API
asked with now = 16:00. Windows start and end on whole minutes (the panels read minute rollups).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
import yaml

from localenv.cluster import LocalCluster
from storage import rollups
from tests.api.conftest import AsyncClientContext, plant_database, write_readings
from tests.api.plant import plant, t
from tests.deploy import compare
from tests.deploy.dashboard import (
    DASHBOARDS,
    DATASOURCES,
    GRAFANA,
    PROVIDERS,
    load,
    run,
    statements,
    variable_sql,
)

NOW = t("16:00")
WINDOWS = [("05:00", "15:00"), ("06:00", "14:00"), ("06:10", "13:47"), ("09:00", "09:47")]
LINES = {"la": ["ma"], "lb": ["mb"], "ld": ["m1", "m2"], "le": ["filler", "capper", "packer"]}


@pytest.fixture(scope="module")
async def url(pg_cluster: LocalCluster) -> AsyncIterator[str]:
    with plant_database(pg_cluster, "grafana") as u:
        await write_readings(u)
        async with await psycopg.AsyncConnection.connect(u, autocommit=True) as conn:
            await rollups.refresh(conn, plant(), now=NOW)
        yield u


@pytest.fixture
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncClientContext(plant(), url, NOW) as c:
        yield c


def windows() -> Iterator[tuple[dt.datetime, dt.datetime]]:
    for a, b in WINDOWS:
        yield t(a), t(b)


def test_datasource_provisioning() -> None:
    """What Grafana needs to create the data source, and the dashboard finds it by default."""
    doc = yaml.safe_load(DATASOURCES.read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["type"] == "grafana-postgresql-datasource"
    assert ds["access"] == "proxy"
    for key in ("name", "uid", "url", "user"):
        assert isinstance(ds[key], str) and ds[key], key
    assert ds["jsonData"]["database"] and ds["jsonData"]["sslmode"]
    assert ds["jsonData"]["timescaledb"] is True
    assert ds["secureJsonData"]["password"].startswith("${")  # from the environment, not here
    for board in DASHBOARDS:
        (pick,) = [v for v in load(board)["templating"]["list"] if v["type"] == "datasource"]
        assert pick["query"] == ds["type"]
        assert pick["current"] == {"text": ds["name"], "value": ds["uid"]}


def test_dashboard_provider() -> None:
    doc = yaml.safe_load(PROVIDERS.read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")


def test_dashboard_is_built_from_its_sql() -> None:
    """dashboards/shopfloor.json is what build_dashboard.py writes from sql/ (no hand edits)."""
    script = GRAFANA / "build_dashboard.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_panel_is_compared() -> None:
    """Each panel of the dashboard has one SQL target and is compared with the API below."""
    (board,) = DASHBOARDS
    panels = load(board)["panels"]
    assert {p["id"] for p in panels} == set(compare.NUMERIC_PANELS)
    for p in panels:
        (target,) = p["targets"]
        assert target["rawQuery"] and target["rawSql"].strip()
        assert (
            target["datasource"]
            == p["datasource"]
            == {
                "type": "grafana-postgresql-datasource",
                "uid": "${datasource}",
            }
        )
    assert len(list(statements(board))) == len(panels) + 3  # line, machine, tag


def test_every_statement_runs(url: str) -> None:
    """Every statement of every dashboard, for every line and machine: it runs."""
    for board in DASHBOARDS:
        for st in statements(board):
            for line, machines in LINES.items():
                for machine in machines:
                    rows = run(
                        url,
                        st.sql,
                        t("05:00"),
                        t("15:00"),
                        {"line": line, "machine": machine, "tag": "1"},
                    )
                    assert isinstance(rows, list), st.where


def test_variables(url: str) -> None:
    """line: every line; machine: the line's machines in line order; tag: the machine's tags."""
    (board,) = DASHBOARDS
    s, e = t("05:00"), t("15:00")
    got = [r["__value"] for r in run(url, variable_sql(board, "line"), s, e, {})]
    assert got == sorted(line.id for line in plant().lines)
    for line, machines in LINES.items():
        rows = run(url, variable_sql(board, "machine"), s, e, {"line": line})
        assert [r["__value"] for r in rows] == machines
    with psycopg.connect(url) as conn:
        ids = dict(conn.execute("SELECT name, id FROM tags WHERE machine_id = 'ma'").fetchall())
    rows = run(url, variable_sql(board, "tag"), s, e, {"line": "la", "machine": "ma"})
    assert rows[0] == {"__value": ids["temp"], "__text": "temp [degC] (measurement)"}
    assert sorted(r["__value"] for r in rows) == sorted(ids.values())


async def test_line_kpis_over_the_range(url: str, client: httpx.AsyncClient) -> None:
    for line in LINES:
        for s, e in windows():
            await compare.line_range(client, url, line, s, e)
    # KPI.md example A (line la, one machine) and E (line le, line units)
    a = await compare.line_range(client, url, "la", t("06:00"), t("14:00"))
    assert round(a["oee"], 6) == 0.747937 and (a["good_units"], a["total_units"]) == (
        18_848,
        19_271,
    )
    e = await compare.line_range(client, url, "le", t("06:00"), t("07:00"))
    assert round(e["performance"], 6) == 0.877333 and (e["good_units"], e["total_units"]) == (
        5160,
        5264,
    )


async def test_kpis_by_hour(url: str, client: httpx.AsyncClient) -> None:
    for line, machines in LINES.items():
        for s, e in windows():
            got = await compare.series(client, url, "lines", line, line, s, e)
            assert got, (line, s, e)
            for machine in machines:
                await compare.series(client, url, "machines", machine, line, s, e)
    # example D's line: its 10:00 hour, where the output machine m2 was down for 30 minutes
    d = await compare.series(client, url, "lines", "ld", "ld", t("06:00"), t("14:00"))
    assert d[t("10:00")] == {"availability": 1.0, "performance": 1.0, "quality": 1.0, "oee": 1.0}


async def test_downtime_by_reason(url: str, client: httpx.AsyncClient) -> None:
    for line in LINES:
        for s, e in windows():
            await compare.pareto(client, url, line, s, e)
    rows = await compare.pareto(client, url, "la", t("06:00"), t("14:00"))
    assert rows == [(10, "jam", "failure", "down", 2820.0, 1, 1.0)]  # example A's 47 minutes


async def test_machine_states(url: str, client: httpx.AsyncClient) -> None:
    for line, machines in LINES.items():
        for machine in machines:
            for s, e in windows():
                await compare.states(client, url, line, machine, s, e)


async def test_tag_trend(url: str, client: httpx.AsyncClient) -> None:
    with psycopg.connect(url) as conn:
        (temp,) = (
            conn.execute("SELECT id FROM tags WHERE machine_id = 'ma' AND name = 'temp'").fetchone()
            or ()
        )
    for interval in ("1m", "10m", "1h"):
        for s, e in windows():
            got = await compare.tag_trend(client, url, ("la", "ma", "temp"), temp, s, e, interval)
            assert got, (interval, s, e)
