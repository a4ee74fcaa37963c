"""The dashboard's panels against the API: each panel's SQL, expanded as Grafana expands it, run
against the database, and the API's answer for the same window, compared field by field.

Panel ids are the dashboard's (deploy/grafana/dashboards/shopfloor.json); `NUMERIC_PANELS`
lists every panel and what it is compared with, and a test checks none is left out.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.deploy.dashboard import DASHBOARDS, panel_sql, run

BOARD = DASHBOARDS[0]
LINE_RANGE, LINE_HOURLY, MACHINE_HOURLY, PARETO, STATES, TAG_TREND = 1, 2, 3, 4, 5, 6
NUMERIC_PANELS = {
    LINE_RANGE: "/lines/{line}/kpis",
    LINE_HOURLY: "/lines/{line}/kpis/series?bucket=1h",
    MACHINE_HOURLY: "/machines/{machine}/kpis/series?bucket=1h",
    PARETO: "/lines/{line}/downtime",
    STATES: "/machines/{machine}/timeline",
    TAG_TREND: "/tags/{machine}/{tag}/series?agg=avg",
}
RATIOS = ("availability", "performance", "quality", "oee")


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def api(
    client: httpx.AsyncClient, path: str, start: dt.datetime, end: dt.datetime, **kw: str
) -> Any:
    r = await client.get("/api/v1" + path, params={"start": iso(start), "end": iso(end), **kw})
    assert r.status_code == 200, r.text
    return r.json()


def _hour(text: str, align: dt.timedelta) -> dt.datetime:
    """The panel's hour holding an API point's start: whole hours shifted by `align`."""
    t = dt.datetime.fromisoformat(text) - align
    return t.replace(minute=0, second=0, microsecond=0) + align


async def line_range(
    client: httpx.AsyncClient, url: str, line: str, s: dt.datetime, e: dt.datetime
) -> dict[str, Any]:
    """Panel 1 == GET /lines/{line}/kpis: the four ratios, good and total in line units."""
    (row,) = run(url, panel_sql(BOARD, LINE_RANGE), s, e, {"line": line})
    k = (await api(client, f"/lines/{line}/kpis", s, e))["kpis"]
    assert {f: row[f] for f in RATIOS} == {f: k[f] for f in RATIOS}, (line, s, e, row, k)
    assert (row["good_units"], row["total_units"]) == (k["good_count"], k["total_count"])
    return row


async def series(
    client: httpx.AsyncClient,
    url: str,
    kind: str,
    ident: str,
    line: str,
    s: dt.datetime,
    e: dt.datetime,
    tz: str = "UTC",
) -> dict[dt.datetime, dict[str, Any]]:
    """Panel 2 (line) or 3 (machine) == the API's hourly series: the same hours, equal ratios.
    `tz`: the line's; hours on its clock at `s` (:30 in India)."""
    align = (s.astimezone(ZoneInfo(tz)).utcoffset() or dt.timedelta(0)) % dt.timedelta(hours=1)
    panel = LINE_HOURLY if kind == "lines" else MACHINE_HOURLY
    rows = run(url, panel_sql(BOARD, panel), s, e, {"line": line, "machine": ident})
    got = {r["time"]: {f: r[f] for f in RATIOS} for r in rows}
    body = await api(client, f"/{kind}/{ident}/kpis/series", s, e, bucket="1h")
    want = {_hour(p["start"], align): {f: p["kpis"][f] for f in RATIOS} for p in body["points"]}
    assert got == want, (kind, ident, s, e)
    return got


async def pareto(
    client: httpx.AsyncClient, url: str, line: str, s: dt.datetime, e: dt.datetime
) -> list[tuple[Any, ...]]:
    """Panel 4 == GET /lines/{line}/downtime: the same rows in the same order."""
    rows = run(url, panel_sql(BOARD, PARETO), s, e, {"line": line})
    got = [
        (
            r["reason_code"],
            r["reason"],
            r["category"],
            r["time_class"],
            r["duration_s"],
            r["events"],
            r["share"],
        )
        for r in rows
    ]
    body = await api(client, f"/lines/{line}/downtime", s, e)
    want = [
        (
            r["reason_code"],
            r["reason_text"] if r["reason_code"] is not None else "no reason",
            r["category"],
            r["class"],
            r["duration_s"],
            r["events"],
            r["share"],
        )
        for r in body["rows"]
    ]
    assert got == want, (line, s, e, got, want)
    return got


def _merged(changes: list[tuple[dt.datetime, str]]) -> list[tuple[dt.datetime, str]]:
    return [next(group) for _, group in itertools.groupby(changes, key=lambda c: c[1])]


async def states(
    client: httpx.AsyncClient, url: str, line: str, machine: str, s: dt.datetime, e: dt.datetime
) -> list[tuple[dt.datetime, str]]:
    """Panel 5 == the classes of GET /machines/{machine}/timeline, equal neighbours merged (the
    state timeline panel merges them too)."""
    rows = run(url, panel_sql(BOARD, STATES), s, e, {"line": line, "machine": machine})
    got = _merged([(r["time"], r["state"]) for r in rows])
    body = await api(client, f"/machines/{machine}/timeline", s, e)
    want = _merged([(dt.datetime.fromisoformat(i["start"]), i["class"]) for i in body["intervals"]])
    assert got == want, (machine, s, e)
    assert body["intervals"][-1]["end"] == iso(e)
    return got


async def tag_trend(
    client: httpx.AsyncClient,
    url: str,
    where: tuple[str, str, str],
    tag_id: int,
    s: dt.datetime,
    e: dt.datetime,
    interval: str,
) -> list[tuple[dt.datetime, float]]:
    """Panel 6 == GET /tags/{machine}/{tag}/series?agg=avg&bucket=<the interval>."""
    line, machine, tag = where
    variables = {"line": line, "machine": machine, "tag": str(tag_id)}
    rows = run(url, panel_sql(BOARD, TAG_TREND), s, e, variables, interval=interval)
    got = [(r["time"], r["value"]) for r in rows]
    body = await api(client, f"/tags/{machine}/{tag}/series", s, e, bucket=interval, agg="avg")
    want = [(dt.datetime.fromisoformat(p["start"]), p["value"]) for p in body["points"]]
    assert got == want, (machine, tag, s, e, interval)
    unit = f" [{body['unit']}]" if body["unit"] else ""
    assert {r["metric"] for r in rows} == ({f"{machine} {tag}{unit}"} if rows else set())
    return got
