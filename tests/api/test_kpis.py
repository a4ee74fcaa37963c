"""KPI.md examples A, B, D and E through the whole path: PLC-like readings in the database ->
HTTP -> figures, to 1e-6."""

from __future__ import annotations

import httpx
import pytest

from tests.api.plant import t

A_WINDOW = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T14:00:00Z"}


def approx(x: float) -> object:
    return pytest.approx(x, abs=1e-6)


async def test_example_a_machine_kpis(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/machines/ma/kpis", params=A_WINDOW)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["machine"] == "ma"
    assert body["window"] == {
        "start": "2026-03-02T06:00:00Z",
        "end": "2026-03-02T14:00:00Z",
        "shift": None,
        "defaulted": False,
    }
    k = body["kpis"]
    assert k["planned_time_s"] == approx(28_800)
    assert k["planned_stop_s"] == approx(3_600)
    assert k["planned_busy_time_s"] == approx(25_200)
    assert k["run_time_s"] == approx(22_380)
    assert k["down_time_s"] == approx(2_820)
    assert (k["total_count"], k["reject_count"], k["good_count"]) == (19_271, 423, 18_848)
    assert k["failure_events"] == 1
    assert k["availability"] == approx(0.888095)
    assert k["performance"] == approx(0.861081)
    assert k["quality"] == approx(0.978050)
    assert k["oee"] == approx(0.747937)
    assert k["flags"] == []


async def test_example_b_machine_kpis(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/machines/mb/kpis",
        # the same window with offsets other than Z
        params={"start": "2026-03-02T07:00:00+01:00", "end": "2026-03-02T09:00:00-05:00"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["window"]["start"] == "2026-03-02T06:00:00Z"
    k = r.json()["kpis"]
    assert k["planned_busy_time_s"] == approx(27_000)
    assert k["run_time_s"] == approx(24_300)
    assert k["down_time_s"] == approx(2_700)
    assert k["failure_events"] == 3
    assert k["availability"] == approx(0.900000)
    assert k["performance"] == approx(0.793045)
    assert k["quality"] == approx(0.978050)
    assert k["oee"] == approx(0.698074)
    assert k["throughput_per_hour"] == approx(2_569.466667)
    assert k["scrap_ratio"] == approx(0.021950)
    assert k["mtbf_s"] == approx(8_100)
    assert k["mttr_s"] == approx(900)
    assert k["reject_count"] == 423


async def test_example_d_line_kpis_and_its_machines(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/lines/ld/kpis", params=A_WINDOW)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["line"] == "ld"
    assert list(body["machines"]) == ["m1", "m2"]
    assert body["machines"]["m1"]["oee"] == approx(0.812500)
    assert body["machines"]["m2"]["oee"] == approx(0.401042)
    k = body["kpis"]
    assert (k["good_count"], k["reject_count"], k["total_count"]) == (385, 15, 400)
    assert k["planned_busy_time_s"] == approx(28_800)
    assert k["availability"] == approx(0.875)
    assert k["performance"] == approx(0.952381)
    assert k["quality"] == approx(0.9625)
    assert k["oee"] == approx(0.802083)


async def test_example_e_line_units(client: httpx.AsyncClient) -> None:
    """The line counts bottles; the packer counts cases of 12 (units_per_count 12)."""
    window = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T07:00:00Z"}
    for source in ("auto", "raw"):
        r = await client.get("/api/v1/lines/le/kpis", params=window | {"source": source})
        assert r.status_code == 200, r.text
        body = r.json()
        k = body["kpis"]
        assert (k["good_count"], k["reject_count"], k["total_count"]) == (5_160, 104, 5_264)
        assert (k["planned_busy_time_s"], k["run_time_s"]) == (3_600, 3_000)
        assert k["availability"] == approx(0.833333)
        assert k["performance"] == approx(0.877333)
        assert k["quality"] == approx(0.980243)
        assert k["oee"] == approx(0.716667)
        assert k["throughput_per_hour"] == approx(5_264)
        packer = body["machines"]["packer"]  # in its own unit: cases
        assert (packer["good_count"], packer["reject_count"]) == (430, 2)


async def test_series_buckets_add_up_to_the_window(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/machines/mb/kpis/series", params={**A_WINDOW, "bucket": "1h"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["kind"], body["id"], body["bucket"]) == ("machine", "mb", "1h")
    points = body["points"]
    assert [p["start"] for p in points] == [f"2026-03-02T{h:02d}:00:00Z" for h in range(6, 14)]
    assert points[-1]["end"] == "2026-03-02T14:00:00Z"
    assert sum(p["kpis"]["down_time_s"] for p in points) == approx(2_700)
    assert sum(p["kpis"]["total_count"] for p in points) == 19_271
    assert sum(p["kpis"]["failure_events"] for p in points) == 3
    # 07:00-08:00 holds the 20-min failure: A = 40/60
    assert points[1]["kpis"]["availability"] == approx(40 / 60)

    r = await client.get("/api/v1/lines/ld/kpis/series", params={**A_WINDOW, "bucket": "shift"})
    assert r.status_code == 200, r.text
    [only] = r.json()["points"]
    assert only["label"] == "early"
    assert only["kpis"]["oee"] == approx(0.802083)


async def test_timeline_and_downtime(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/machines/ma/timeline",
        params={"start": "2026-03-02T08:30:00Z", "end": "2026-03-02T10:10:00Z"},
    )
    assert r.status_code == 200, r.text
    got = [
        (i["start"][11:19], i["end"][11:19], i["class"], i["reason_code"], i["reason_text"])
        for i in r.json()["intervals"]
    ]
    assert got == [
        ("08:30:00", "09:00:00", "running", None, None),
        ("09:00:00", "09:47:00", "down", 10, "jam"),
        ("09:47:00", "10:00:00", "running", None, None),
        ("10:00:00", "10:10:00", "idle", None, None),
    ]
    assert all(i["short_stop"] is False for i in r.json()["intervals"])

    r = await client.get("/api/v1/machines/ma/downtime", params=A_WINDOW)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows[0] == {
        "reason_code": 10,
        "reason_text": "jam",
        "category": "failure",
        "class": "down",
        "duration_s": approx(2_820),
        "events": 1,
        "share": approx(1.0),
    }

    r = await client.get("/api/v1/lines/ld/downtime", params=A_WINDOW)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    # m1 down 60 min, m2 down 30 min, both without a reason: one row, two events
    assert [(x["class"], x["duration_s"], x["events"]) for x in rows] == [("down", 5_400, 2)]


async def test_lines_and_machines_with_current_state(client: httpx.AsyncClient) -> None:
    # now = 15:00; the last state sample (14:59:30, idle) is 30 s old: not stale
    r = await client.get("/api/v1/lines")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 5
    ld = next(x for x in body["data"] if x["id"] == "ld")
    assert ld["calendar"] == {"name": "cal-d", "timezone": "UTC"}
    assert (ld["constraint"], ld["outputs"]) == ("m1", ["m2"])
    assert [m["id"] for m in ld["machines"]] == ["m1", "m2"]

    r = await client.get("/api/v1/machines/ma")
    assert r.status_code == 200, r.text
    m = r.json()
    assert (m["id"], m["line"], m["ideal_cycle_s"], m["units_per_count"]) == ("ma", "la", 1.0, 1)
    assert m["state"]["since"] == "2026-03-02T14:00:00Z"
    assert m["state"]["class"] == "idle"
    assert m["state"]["value"] == 3
    assert m["state"]["sample_time"] == "2026-03-02T14:59:30Z"
    assert m["state"]["stale"] is False

    r = await client.get("/api/v1/machines/mx")  # no tags at all
    assert r.json()["state"]["class"] == "unknown"
    assert r.json()["state"]["since"] is None

    r = await client.get("/api/v1/lines/lx")
    assert r.json()["calendar"] is None
    r = await client.get("/api/v1/machines")
    ids = ["ma", "mb", "m1", "m2", "filler", "capper", "packer", "mx"]
    assert [m["id"] for m in r.json()["data"]] == ids
    assert [m["units_per_count"] for m in r.json()["data"]] == [1, 1, 1, 1, 1, 1, 12, 1]


async def test_state_goes_stale_after_max_gap(make_client) -> None:
    async with make_client(now=t("15:05")) as c:
        r = await c.get("/api/v1/machines/ma")
    state = r.json()["state"]
    assert state["stale"] is True
    assert state["class"] == "unknown"
