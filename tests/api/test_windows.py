"""Default windows: the current shift so far, else the last shift that ended, else 8 hours."""

from __future__ import annotations

import pytest

from tests.api.plant import t


async def test_default_window_is_the_current_shift_so_far(make_client) -> None:
    async with make_client(now=t("09:30")) as c:
        r = await c.get("/api/v1/machines/mb/kpis")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["window"] == {
        "start": "2026-03-02T06:00:00Z",
        "end": "2026-03-02T09:30:00Z",
        "shift": "early",
        "defaulted": True,
    }
    # 06:00-09:30 of example B: failures 07:00-07:20 and 09:00-09:15, no break yet
    k = body["kpis"]
    assert k["planned_time_s"] == pytest.approx(12_600, abs=1e-6)
    assert k["down_time_s"] == pytest.approx(2_100, abs=1e-6)
    assert k["failure_events"] == 2


async def test_default_window_outside_shifts_is_the_last_shift(make_client) -> None:
    async with make_client(now=t("20:00")) as c:
        r = await c.get("/api/v1/lines/ld/kpis")
        series = await c.get("/api/v1/lines/ld/kpis/series", params={"bucket": "shift"})
    assert r.status_code == 200, r.text
    assert r.json()["window"] == {
        "start": "2026-03-02T06:00:00Z",
        "end": "2026-03-02T14:00:00Z",
        "shift": "early",
        "defaulted": True,
    }
    assert r.json()["kpis"]["oee"] == pytest.approx(0.802083, abs=1e-6)
    assert [p["label"] for p in series.json()["points"]] == ["early"]


async def test_default_window_over_a_weekend_reaches_back_to_friday(make_client) -> None:
    async with make_client(now=t("12:00").replace(day=8)) as c:  # Sunday 2026-03-08
        r = await c.get("/api/v1/machines/m1/timeline")
    assert r.json()["window"]["start"] == "2026-03-06T06:00:00Z"
    assert r.json()["window"]["end"] == "2026-03-06T14:00:00Z"


async def test_default_window_without_calendar_is_the_last_8_hours(make_client) -> None:
    async with make_client(now=t("15:00")) as c:
        r = await c.get("/api/v1/machines/mx/kpis")
    assert r.status_code == 200, r.text
    assert r.json()["window"] == {
        "start": "2026-03-02T07:00:00Z",
        "end": "2026-03-02T15:00:00Z",
        "shift": None,
        "defaulted": True,
    }
    assert "calendar_missing" in r.json()["kpis"]["flags"]


async def test_start_alone_runs_to_now(make_client) -> None:
    async with make_client(now=t("11:00")) as c:
        r = await c.get("/api/v1/machines/ma/kpis", params={"start": "2026-03-02T10:00:00Z"})
    assert r.json()["window"]["end"] == "2026-03-02T11:00:00Z"
    assert r.json()["window"]["defaulted"] is False
