"""A line's page and a machine's: exact figures for the window, the Pareto, the states; the window
picker and the drill-down from line to machine to one hour."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser import story
from tests.browser.conftest import Watched, figure


def pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def tiles(page: Page) -> dict[str, str]:
    """What each OEE/A/P/Q tile of the page reads."""
    return {
        label: figure(page.locator("main"), label).get_by_role("link").inner_text()
        for label in story.EXAMPLE_B
    }


def api_tiles(api_url: str, path: str, **window: str) -> dict[str, str]:
    k = httpx.get(f"{api_url}/api/v1{path}", params=window).json()["kpis"]
    fields = ("oee", "availability", "performance", "quality")
    return {
        label: pct(k[f]) if k[f] is not None else "—"
        for label, f in zip(story.EXAMPLE_B, fields, strict=True)
    }


def pareto(page: Page) -> list[list[str]]:
    table = page.get_by_role("region", name="Downtime by reason").get_by_role("table")
    return [row.split("\t")[:4] for row in table.locator("tbody tr").all_inner_texts()]


def test_line_page_shows_the_shift(watched: Watched, api_url: str) -> None:
    page = watched.page
    page.goto(api_url + "/#/line/pack")
    expect(page.get_by_role("heading", level=1)).to_have_text("Packing line")
    expect(page.get_by_text("early · Mon 02 Mar 07:00 – 15:00 (Europe/Berlin)")).to_be_visible()
    expect(figure(page, "OEE")).to_have_text("OEE" + story.EXAMPLE_B["OEE"])
    assert tiles(page) == story.EXAMPLE_B == api_tiles(api_url, "/lines/pack/kpis")
    counts = {
        "Good": "18,848",
        "Rejects": "423",
        "Total": "19,271",
        "Down time": "45 min",
        "Failures": "3",
        "MTBF": "2 h 15 min",  # 8,100 s
        "MTTR": "15 min",  # 900 s
    }
    for label, text in counts.items():
        expect(figure(page, label).get_by_role("link")).to_have_text(text)

    assert pareto(page) == [
        [reason, "idle" if reason == "starved" else "down", length, str(n)]
        for reason, length, n in story.PARETO
    ]
    rows = httpx.get(api_url + "/api/v1/lines/pack/downtime").json()["rows"]
    assert [(r["reason_text"], r["duration_s"], r["events"]) for r in rows] == [
        ("jam", 1800, 2),
        ("starved", 1200, 1),
        ("motor fault", 900, 1),
    ]

    machines = page.get_by_role("region", name="Machines").get_by_role("row")
    expect(machines.filter(has_text="Filler 1")).to_contain_text("idle15:00—69.8 %90.0 %")
    expect(machines.filter(has_text="labeler")).to_contain_text("down15:30jam")
    for name in ("labeler", "Filler 1"):
        expect(page.get_by_role("img", name=f"{name}: state timeline")).to_be_visible()
    # the filler's three failures on its strip, in local time
    strip = page.get_by_role("img", name="Filler 1: state timeline")
    said = strip.locator("title").all_text_contents()  # what a hover shows
    assert [s for s in said if s.startswith("down")] == [
        "down · jam · 08:00–08:20 (20 min)",
        "down · motor fault · 10:00–10:15 (15 min)",
        "down · jam · 13:00–13:10 (10 min)",
    ]
    # every figure links to the API call it came from
    href = figure(page, "OEE").get_by_role("link").get_attribute("href")
    assert (
        href == "api/v1/lines/pack/kpis?start=2026-03-02T06%3A00%3A00Z&end=2026-03-02T14%3A00%3A00Z"
    )


def test_switching_the_window_updates_the_figures(watched: Watched, api_url: str) -> None:
    page = watched.page
    page.goto(api_url + "/#/line/pack")
    expect(figure(page, "OEE")).to_have_text("OEE" + story.EXAMPLE_B["OEE"])

    page.get_by_role("navigation", name="Window").get_by_role("link", name="previous shift").click()
    expect(page.get_by_text("early · Fri 27 Feb 07:00 – 15:00 (Europe/Berlin)")).to_be_visible()
    expect(figure(page, "OEE")).to_have_text("OEE—")  # no data that day: undefined, not 0
    assert "w=previous_shift" in page.url

    form = page.get_by_role("form", name="Custom window")
    form.get_by_label("From").fill("2026-03-02T07:00")
    form.get_by_label("to").fill("2026-03-02T09:00")
    form.get_by_role("button", name="Show").click()
    expect(page.get_by_text("Mon 02 Mar 07:00 – 09:00 (Europe/Berlin)")).to_be_visible()
    # 06:00-08:00 UTC: the 20-min failure in 2 h of planned busy time, A = 100/120
    expect(figure(page, "Availability")).to_have_text("Availability83.3 %")
    window = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T08:00:00Z"}
    assert tiles(page) == api_tiles(api_url, "/lines/pack/kpis", **window)


def test_drill_down_line_machine_hour(watched: Watched, api_url: str) -> None:
    page = watched.page
    page.goto(api_url + "/")
    page.get_by_role("link", name="Packing line").click()
    page.get_by_role("region", name="Machines").get_by_role("link", name="Filler 1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Filler 1 on Packing line")
    # the filler alone is example B too
    expect(figure(page, "OEE")).to_have_text("OEE" + story.EXAMPLE_B["OEE"])
    assert tiles(page) == api_tiles(api_url, "/machines/filler/kpis")
    assert pareto(page) == [["jam", "down", "30 min", "2"], ["motor fault", "down", "15 min", "1"]]

    # one click on the trend's 08:00 hour opens that hour: 20 min of 60 down
    page.get_by_role("img", name="OEE, availability, performance and quality per 1h").locator(
        "a.bucket"
    ).nth(1).click()
    expect(page.get_by_text("Mon 02 Mar 08:00 – 09:00 (Europe/Berlin)")).to_be_visible()
    expect(figure(page, "Availability")).to_have_text("Availability66.7 %")
    page.get_by_role("navigation", name="Breadcrumb").get_by_role(
        "link", name="Packing line"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Packing line")


def test_line_without_calendar_or_counts(watched: Watched, api_url: str) -> None:
    page = watched.page
    page.goto(api_url + "/#/line/spare")
    expect(page.get_by_role("heading", level=1)).to_have_text("spare")
    # no calendar: the last 8 hours, in UTC; no counts: figures undefined, not 0
    expect(page.get_by_text("Mon 02 Mar 07:00 – 15:00 (UTC)")).to_be_visible()
    expect(figure(page, "OEE")).to_have_text("OEE—")
    expect(figure(page, "Good")).to_have_text("Good—")
    buckets = page.get_by_role("navigation", name="Trend bucket").get_by_role("link")
    expect(buckets).to_have_text(["by hour", "by day"])  # no shifts without a calendar
    row = page.get_by_role("region", name="Machines").get_by_role("row").filter(has_text="lonely")
    expect(row).to_contain_text("no data stale14:51")  # silent since 14:50:30 + max_gap_s
    expect(page.get_by_text("No stop time in this window.")).to_be_visible()


def test_a_long_window_draws_each_state_s_share_per_shift(watched: Watched, api_url: str) -> None:
    page = watched.page
    page.goto(api_url + "/#/line/pack?w=last_7d")
    expect(page.get_by_text("Share of each state per shift")).to_be_visible()
    strip = page.get_by_role("img", name="Filler 1: state timeline")
    # the early shift of Mon 02 Mar: example B's 7 h 30 min of planned busy time (6 h 45 min
    # run, of it no short stop; 45 min down) and the 30 min planned stop
    assert set(strip.locator("title").all_text_contents()) >= {
        "early Mon 02 Mar 07:00: running 6 h 45 min, down 45 min, planned stop 30 min",
    }
    sources = page.get_by_role("region", name="State timeline").get_by_role("link")
    assert all("/kpis/series?" in (a.get_attribute("href") or "") for a in sources.all())
    assert sources.count() == 2  # one per machine, from the rollups: no month of raw intervals
