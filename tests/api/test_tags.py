"""Tag list, bucketed series (time_bucket, last) and raw keyset paging."""

from __future__ import annotations

import datetime as dt
import statistics

import httpx
import pytest

from tests.api.plant import temperature

W = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T14:00:00Z"}
TEMP = "/api/v1/tags/ma/temp/series"


async def test_tag_list(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/tags")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 23
    temp = next(x for x in body["data"] if (x["machine"], x["name"]) == ("ma", "temp"))
    assert temp == {
        "machine": "ma",
        "name": "temp",
        "signal": "measurement",
        "unit": "degC",
        "counter": None,
        "wrap": None,
        "source": "plc",
        "protocol": "modbus",
        "address": temp["address"],
        "active": True,
    }
    total = next(x for x in body["data"] if (x["machine"], x["name"]) == ("ma", "total"))
    assert (total["signal"], total["counter"]) == ("total_count", "cumulative")


@pytest.mark.parametrize("agg", ["avg", "min", "max", "last"])
async def test_bucketed_series_matches_the_readings(client: httpx.AsyncClient, agg: str) -> None:
    r = await client.get(TEMP, params={**W, "bucket": "15m", "agg": agg})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["bucket"], body["agg"], body["unit"]) == ("15m", agg, "degC")
    expected: dict[dt.datetime, list[float]] = {}
    for time, value in temperature():
        key = time.replace(minute=time.minute - time.minute % 15, second=0, microsecond=0)
        expected.setdefault(key, []).append(value)
    pick = {"avg": statistics.fmean, "min": min, "max": max, "last": lambda v: v[-1]}[agg]
    got = [(p["start"], p["value"], p["samples"]) for p in body["points"]]
    want = [
        (k.isoformat().replace("+00:00", "Z"), pytest.approx(pick(v), abs=1e-9), len(v))
        for k, v in sorted(expected.items())
    ]
    assert got == want
    assert sum(p["samples"] for p in body["points"]) == 2503


async def test_raw_pages_join_to_exactly_the_rows(client: httpx.AsyncClient) -> None:
    rows, cursor, pages = [], None, 0
    while True:
        params = {**W, "raw": "true", "limit": "100"}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(TEMP, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["readings"]) == (100 if body["next_cursor"] else 3)
        rows += [(x["time"], x["value"]) for x in body["readings"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 26
    want = [(t.isoformat().replace("+00:00", "Z"), v) for t, v in temperature()]
    assert rows == want  # no duplicate, no gap, microseconds kept


async def test_raw_page_exactly_full_then_empty_cursor(client: httpx.AsyncClient) -> None:
    """2,503 rows in pages of 2,503: one page, no cursor (no empty last page)."""
    r = await client.get(TEMP, params={**W, "raw": "true", "limit": "2503"})
    assert len(r.json()["readings"]) == 2503
    assert r.json()["next_cursor"] is None
    r = await client.get(TEMP, params={**W, "raw": "true", "limit": "2502"})
    assert r.json()["next_cursor"] is not None
    r = await client.get(
        TEMP, params={**W, "raw": "true", "limit": "2502", "cursor": r.json()["next_cursor"]}
    )
    assert [x["value"] for x in r.json()["readings"]] == [temperature()[-1][1]]
    assert r.json()["next_cursor"] is None


async def test_raw_window_is_half_open(client: httpx.AsyncClient) -> None:
    first, second = temperature()[0][0], temperature()[1][0]
    r = await client.get(
        TEMP,
        params={"start": first.isoformat(), "end": second.isoformat(), "raw": "true"},
    )
    assert [x["time"] for x in r.json()["readings"]] == ["2026-03-02T06:00:00Z"]
    assert r.json()["readings"][0]["quality"] == 0
