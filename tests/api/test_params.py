"""Query parameters: what a route does not declare is refused (a typo must not silently answer
for the default window), and `source=raw` computes KPIs from raw readings alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from api.app import create_app
from api.cache import ResultCache
from localenv.cluster import LocalCluster
from storage import rollups
from tests.api.conftest import AFTER_SHIFT, AsyncClientContext, plant_database, write_readings
from tests.api.plant import KEY, plant

SHIFT = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T14:00:00Z"}
REAL = {"line": "la", "machine": "ma", "tag": "temp"}


def _operations() -> list[tuple[str, list[str]]]:
    """Every GET of the OpenAPI document, with the query parameters it declares."""
    doc = create_app(plant(), database_url="postgresql://unused").openapi()
    return [
        (path, [p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query"])
        for path, item in doc["paths"].items()
    ]


OPERATIONS = _operations()


@pytest.mark.parametrize(("path", "declared"), OPERATIONS, ids=[p for p, _ in OPERATIONS])
async def test_every_route_refuses_what_its_document_does_not_declare(
    client: httpx.AsyncClient, path: str, declared: list[str]
) -> None:
    """Before: `?strat=` was ignored. The accepted names in the message are exactly the
    document's, so the check cannot drift from what the API declares."""
    r = await client.get(path.format(**REAL), params={"strat": "2026-03-02T06:00:00Z"})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_parameter"
    assert err["detail"] == [
        {"loc": ["query", "strat"], "msg": err["detail"][0]["msg"], "type": "unknown_parameter"}
    ]
    assert err["message"].startswith("unknown query parameter 'strat'"), err
    takes = err["message"].split("; this route takes ", 1)[1]
    if declared:
        assert sorted(takes.split(", ")) == sorted(declared), err
    else:
        assert takes == "no query parameters", err


async def test_a_typo_names_the_parameter_meant(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/lines/la/kpis", params={"strat": SHIFT["start"]})
    err = r.json()["error"]
    assert err["message"] == (
        "unknown query parameter 'strat' (did you mean 'start'?); "
        "this route takes start, end, source"
    )
    assert err["detail"][0]["msg"] == "not a parameter of this route; did you mean 'start'?"


async def test_several_unknown_parameters_are_all_named(client: httpx.AsyncClient) -> None:
    params = [("Start", "x"), ("bucket", "1h"), ("x\n", "1"), *[(f"p{i}", "1") for i in range(12)]]
    r = await client.get("/api/v1/machines/ma/kpis", params=params)
    err = r.json()["error"]
    assert r.status_code == 422
    assert err["message"].startswith("unknown query parameters 'Start', 'bucket', 'x\\n', 'p0'")
    assert "'p6' and 5 more; this route takes start, end, source" in err["message"]
    assert [d["loc"][1] for d in err["detail"][:3]] == ["Start", "bucket", "x\n"]
    assert err["detail"][0]["msg"].endswith("did you mean 'start'?")
    assert len(err["detail"]) == 10


async def test_declared_parameters_pass(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/tags/ma/temp/series", params={**SHIFT, "bucket": "1h", "agg": "max", "raw": "0"}
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/api/v1/lines")).status_code == 200


async def test_without_the_key_an_unknown_parameter_is_still_401(loaded_url: str) -> None:
    """The key is checked first: a client without one learns nothing about a route."""
    async with AsyncClientContext(plant(keys=[KEY]), loaded_url, AFTER_SHIFT) as c:
        anonymous = await c.get("/api/v1/lines/la/kpis", params={"strat": "x"})
        keyed = await c.get(
            "/api/v1/lines/la/kpis",
            params={"strat": "x"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert anonymous.status_code == 401
    assert keyed.status_code == 422


# --- source -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/lines/la/kpis",
        "/api/v1/machines/ma/kpis",
        "/api/v1/lines/la/kpis/series",
        "/api/v1/machines/ma/kpis/series",
        "/api/v1/lines/la/downtime",
        "/api/v1/machines/ma/downtime",
    ],
)
async def test_source_raw_gives_the_examples_figures(client: httpx.AsyncClient, path: str) -> None:
    auto = await client.get(path, params=SHIFT)
    raw = await client.get(path, params={**SHIFT, "source": "raw"})
    assert raw.status_code == 200, raw.text
    assert raw.json() == auto.json()  # no rollups in this database: both read raw readings
    bad = await client.get(path, params={**SHIFT, "source": "rollups"})
    assert bad.status_code == 422
    assert bad.json()["error"]["detail"][0]["loc"] == ["query", "source"]
    assert "'auto' or 'raw'" in bad.json()["error"]["message"]


async def test_source_raw_windows_are_limited(client: httpx.AsyncClient) -> None:
    """It reads every sample of the window: 7 days, not the 366 of rollups."""
    week = {"start": "2026-02-23T06:00:00Z", "end": "2026-03-02T06:00:00Z"}
    longer = {"start": "2026-02-20T00:00:00Z", "end": SHIFT["end"]}
    assert (await client.get("/api/v1/lines/ld/kpis", params=longer)).status_code == 200
    ok = await client.get("/api/v1/lines/ld/kpis", params={**week, "source": "raw"})
    assert ok.status_code == 200, ok.text
    r = await client.get("/api/v1/lines/ld/kpis/series", params={**longer, "source": "raw"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert (
        err["message"] == "end: window of 10 days 14 h exceeds the limit of 7 days for source=raw"
    )
    assert err["detail"][0]["loc"] == ["query", "end"]


async def test_timelines_take_no_source(client: httpx.AsyncClient) -> None:
    """A timeline is always computed from raw readings (docs/api.md): nothing to pick."""
    r = await client.get("/api/v1/machines/ma/timeline", params={**SHIFT, "source": "raw"})
    assert r.status_code == 422
    assert r.json()["error"]["detail"][0]["loc"] == ["query", "source"]


@pytest.fixture
async def falsified_url(pg_cluster: LocalCluster) -> AsyncIterator[str]:
    """The test plant's readings with their rollups refreshed, then falsified: machine mb's
    hour rows of the shift say it was down a minute more in each hour (and ran a minute less)."""
    with plant_database(pg_cluster, "apisrc") as url:
        await write_readings(url)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await rollups.refresh(conn, plant(), now=AFTER_SHIFT)
            cur = await conn.execute(
                "UPDATE machine_hours SET running_s = running_s - 60, down_s = down_s + 60 "
                "WHERE machine_id = 'mb' "
                "AND hour >= '2026-03-02T06:00:00Z' AND hour < '2026-03-02T14:00:00Z'"
            )
            assert cur.rowcount == 8
        yield url


def _down_s(body: dict[str, Any]) -> float:
    if "points" in body:
        return sum(p["kpis"]["down_time_s"] for p in body["points"])
    return body["kpis"]["down_time_s"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/machines/mb/kpis", "/api/v1/lines/lb/kpis", "/api/v1/machines/mb/kpis/series"],
)
async def test_source_raw_checks_the_rollups(falsified_url: str, path: str) -> None:
    """Default (auto) answers read the falsified rollups; source=raw gives example B's true 45
    minutes down (mb is line lb's constraint: the line has its times). Each is its own cache
    entry: asked again, each comes from the cache."""
    ctx = AsyncClientContext(plant(), falsified_url, AFTER_SHIFT)
    cache: ResultCache = ctx.app.state.cache
    async with ctx as c:
        auto = await c.get(path, params=SHIFT)
        raw = await c.get(path, params={**SHIFT, "source": "raw"})
        assert cache.stats.computed == 2
        assert (await c.get(path, params={**SHIFT, "source": "raw"})).content == raw.content
        assert (await c.get(path, params=SHIFT)).content == auto.content
        assert cache.stats.hits == 2
    assert auto.status_code == raw.status_code == 200, (auto.text, raw.text)
    assert _down_s(raw.json()) == pytest.approx(2_700, abs=1e-6)
    assert _down_s(auto.json()) >= 2_700 + 4 * 60  # the hours without a break, at least
