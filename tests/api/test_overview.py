"""/overview (every line's current-shift KPIs and machine states in one call) and
/lines/{line}/windows (named windows by the line's calendar), which the dashboard reads."""

from __future__ import annotations

import httpx
from pytest import approx

from tests.api.conftest import ClientFactory
from tests.api.plant import KEY, plant
from tests.browser import story
from tests.kpi.test_examples import t


async def test_overview_is_each_line_current_shift(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/overview")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["now"] == "2026-03-02T15:00:00Z"
    assert body["count"] == 5
    lines = {x["id"]: x for x in body["data"]}
    assert list(lines) == ["la", "lb", "ld", "le", "lx"]
    lb = lines["lb"]
    assert lb["window"] == {
        "start": "2026-03-02T06:00:00Z",
        "end": "2026-03-02T14:00:00Z",
        "shift": "early",
        "defaulted": True,
    }
    assert lb["timezone"] == "UTC"
    k = lb["kpis"]  # KPI.md example B
    assert (k["availability"], k["performance"]) == (approx(0.9), approx(0.793045, abs=1e-6))
    assert (k["quality"], k["oee"]) == (approx(0.978050, abs=1e-6), approx(0.698074, abs=1e-6))
    assert lines["ld"]["kpis"]["oee"] == approx(0.802083, abs=1e-6)  # example D, line rule
    # no calendar: the last 8 hours, in UTC
    assert lines["lx"]["window"]["start"] == "2026-03-02T07:00:00Z"
    assert lines["lx"]["timezone"] == "UTC"
    # the same figures and states as the resource routes give
    same = (await client.get("/api/v1/lines/lb/kpis")).json()["kpis"]
    assert k == same
    line = (await client.get("/api/v1/lines/la")).json()
    assert lines["la"]["machines"] == line["machines"]
    assert lines["la"]["machines"][0]["state"]["class"] == "idle"


async def test_windows_by_the_calendar(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/lines/lb/windows")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["line"], body["timezone"], body["now"]) == ("lb", "UTC", "2026-03-02T15:00:00Z")
    got = {w["key"]: (w["start"], w["end"], w["shift"], w["label"]) for w in body["windows"]}
    assert got == {
        # 15:00 is after the shift: the shift that ended, then the one before it (Friday)
        "current_shift": (
            "2026-03-02T06:00:00Z",
            "2026-03-02T14:00:00Z",
            "early",
            "current shift (early)",
        ),
        "previous_shift": (
            "2026-02-27T06:00:00Z",
            "2026-02-27T14:00:00Z",
            "early",
            "previous shift (early)",
        ),
        "today": ("2026-03-02T00:00:00Z", "2026-03-02T15:00:00Z", None, "today"),
        "last_24h": ("2026-03-01T15:00:00Z", "2026-03-02T15:00:00Z", None, "last 24 h"),
        "last_7d": ("2026-02-23T15:00:00Z", "2026-03-02T15:00:00Z", None, "7 days"),
        "last_30d": ("2026-01-31T15:00:00Z", "2026-03-02T15:00:00Z", None, "30 days"),
    }

    r = await client.get("/api/v1/lines/lx/windows")  # no calendar: 8-hour windows
    shifts = {w["key"]: (w["start"], w["end"], w["shift"]) for w in r.json()["windows"]}
    assert shifts["current_shift"] == ("2026-03-02T07:00:00Z", "2026-03-02T15:00:00Z", None)
    assert shifts["previous_shift"] == ("2026-03-01T23:00:00Z", "2026-03-02T07:00:00Z", None)


async def test_windows_in_the_calendar_zone(make_client: ClientFactory) -> None:
    # Europe/Berlin, shift 07:00-15:00 local; at 06:30 UTC (07:30 local) a shift runs
    async with make_client(story.plant(), now=t("06:30")) as c:
        r = await c.get("/api/v1/lines/pack/windows")
    body = r.json()
    assert body["timezone"] == "Europe/Berlin"
    got = {w["key"]: (w["start"], w["end"]) for w in body["windows"]}
    assert got["current_shift"] == ("2026-03-02T06:00:00Z", "2026-03-02T06:30:00Z")
    assert got["previous_shift"] == ("2026-02-27T06:00:00Z", "2026-02-27T14:00:00Z")
    assert got["today"] == ("2026-03-01T23:00:00Z", "2026-03-02T06:30:00Z")  # local midnight


async def test_strict_like_every_route(
    client: httpx.AsyncClient, make_client: ClientFactory
) -> None:
    r = await client.get("/api/v1/overview", params={"start": "2026-03-02T06:00:00Z"})
    assert r.status_code == 422
    assert r.json()["error"]["detail"][0]["type"] == "unknown_parameter"
    r = await client.get("/api/v1/lines/LB/windows")
    assert r.status_code == 404
    assert "did you mean 'lb'" in r.json()["error"]["message"]
    async with make_client(plant(keys=[KEY])) as c:
        for path in ("/api/v1/overview", "/api/v1/lines/lb/windows"):
            assert (await c.get(path)).status_code == 401
            ok = await c.get(path, headers={"Authorization": f"Bearer {KEY}"})
            assert ok.status_code == 200
