"""A central API (issue 17): a config without lines serves every active line the edges synced
into the database, with the same answers as an API over one config declaring them all; it
re-reads the plant when an edge syncs, and says so honestly while it cannot read it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from config import parse_config
from localenv.cluster import LocalCluster
from storage.ownership import release
from storage.plant_sync import sync_plant
from tests.api.conftest import AFTER_SHIFT, AsyncClientContext, plant_database, write_readings
from tests.api.plant import plant, t
from tests.edges import edge_config
from tests.services import eventually

PLANT = plant()
LINES = ["la", "lb", "ld", "le"]
EDGES = [edge_config(PLANT, "line1-pc", {"la", "lb"}), edge_config(PLANT, "line2-pc", {"ld", "le"})]
CENTRAL = parse_config("settings: {api: {cache_s: 0}}\n", filename="central.yaml")
DAY = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}


@pytest.fixture(scope="module")
async def central_url(pg_cluster: LocalCluster) -> Iterator[str]:
    """The test plant synced by two edges (lx by none), with the examples' readings."""
    with plant_database(pg_cluster, "central") as url:
        with psycopg.connect(url) as conn:
            release(conn, "default")
            for cfg in EDGES:
                sync_plant(conn, cfg, now=t("00:00"))
        await write_readings(url)
        yield url


def paths() -> list[tuple[str, dict[str, str]]]:
    calls: list[tuple[str, dict[str, str]]] = [
        ("/api/v1/lines", {}),
        ("/api/v1/machines", {}),
        ("/api/v1/overview", {}),
    ]
    for line in EDGES[0].lines + EDGES[1].lines:
        base = f"/api/v1/lines/{line.id}"
        calls += [
            (base, {}),
            (f"{base}/kpis", {}),  # the calendar's last shift
            (f"{base}/kpis", DAY | {"source": "raw"}),
            (f"{base}/kpis/series", DAY | {"bucket": "shift"}),
            (f"{base}/downtime", DAY),
            (f"{base}/windows", {}),
        ]
        for m in line.machines:
            calls += [
                (f"/api/v1/machines/{m.id}/kpis", DAY),
                (f"/api/v1/machines/{m.id}/timeline", DAY),
            ]
    return calls


async def test_central_answers_equal_one_config_declaring_every_line(central_url: str) -> None:
    """Every line of both edges, answer by answer, as an API over their union answers."""
    union = edge_config(PLANT, "any", set(LINES))
    async with (
        AsyncClientContext(CENTRAL, central_url, AFTER_SHIFT) as central,
        AsyncClientContext(union, central_url, AFTER_SHIFT) as edge,
    ):
        lines = await central.get("/api/v1/lines")
        assert lines.status_code == 200, lines.text
        assert [line["id"] for line in lines.json()["data"]] == LINES
        for path, params in paths():
            ours, theirs = (
                await central.get(path, params=params),
                await edge.get(path, params=params),
            )
            assert (ours.status_code, path) == (200, path), ours.text
            assert ours.json() == theirs.json(), path
        # A line no edge declares (lx) is not served, with the usual answer.
        gone = await central.get("/api/v1/lines/lx/kpis")
        assert gone.status_code == 404
        assert gone.json()["error"]["message"].startswith("no line 'lx'")
        health = (await central.get("/healthz")).json()
        assert health["plant"]["lines"] == 4
        assert health["plant"]["edges"] == ["line1-pc", "line2-pc"]


async def test_central_reads_the_plant_again_when_an_edge_syncs(
    pg_cluster: LocalCluster,
) -> None:
    with plant_database(pg_cluster, "central") as url:
        with psycopg.connect(url) as conn:
            release(conn, "default")
            sync_plant(conn, EDGES[0])
        async with AsyncClientContext(CENTRAL, url, AFTER_SHIFT) as central:
            seen: list[str] = []

            async def read() -> None:
                body = (await central.get("/api/v1/lines")).json()
                seen[:] = [line["id"] for line in body["data"]]

            async def served(ids: list[str]) -> None:
                await eventually(lambda: seen == ids, each=read, what=lambda: f"lines {seen}")

            await served(["la", "lb"])
            with psycopg.connect(url) as conn:
                sync_plant(conn, edge_config(PLANT, "line3-pc", {"lx"}))
            await served(["la", "lb", "lx"])
            with psycopg.connect(url) as conn:
                release(conn, "line1-pc")
            await served(["lx"])
            assert (await central.get("/api/v1/lines/la")).status_code == 404


async def test_central_without_a_database_says_so() -> None:
    nowhere = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    async with AsyncClientContext(CENTRAL, nowhere, AFTER_SHIFT) as central:
        r = await central.get("/api/v1/lines")
        assert r.status_code == 503
        error = r.json()["error"]
        assert error["code"] == "database_unavailable"
        assert error["message"].startswith("the plant model has not been read from the database")
        health = await central.get("/healthz")
        assert health.status_code == 503
        problems = health.json()["problems"]
        assert any(p.startswith("plant model not read from the database yet") for p in problems)


async def test_an_edge_config_still_serves_its_own_lines_only(central_url: str) -> None:
    async with AsyncClientContext(EDGES[1], central_url, AFTER_SHIFT) as edge:
        body = (await edge.get("/api/v1/lines")).json()
        assert [line["id"] for line in body["data"]] == ["ld", "le"]
        assert "plant" not in (await edge.get("/healthz")).json()
