"""The plant overview at `/`: every line's figures for its current shift, each machine's state."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.browser import story
from tests.browser.conftest import Watched, figure


def test_overview_shows_each_line_and_machine(watched: Watched, api_url: str) -> None:
    page = watched.page
    page.goto(api_url + "/")
    pack = page.get_by_role("article", name="Packing line")
    expect(figure(pack, "OEE")).to_have_text("OEE" + story.EXAMPLE_B["OEE"])
    # KPI.md example B, exactly as the API computes it for the same window
    api = httpx.get(api_url + "/api/v1/lines/pack/kpis").json()
    assert api["window"]["start"] == "2026-03-02T06:00:00Z"
    for label, field in [
        ("OEE", "oee"),
        ("Availability", "availability"),
        ("Performance", "performance"),
        ("Quality", "quality"),
    ]:
        shown = f"{api['kpis'][field] * 100:.1f} %"
        assert shown == story.EXAMPLE_B[label]
        expect(figure(pack, label).get_by_role("link")).to_have_text(shown)
    expect(pack.get_by_text("early · Mon 02 Mar 07:00 – 15:00 (Europe/Berlin)")).to_be_visible()

    rows = pack.get_by_role("row")
    # now = 16:00 Berlin: the filler idle since the shift's end, the labeler down (jam) at 15:30
    expect(rows.filter(has_text="Filler 1")).to_have_text("Filler 1idle15:00—")
    expect(rows.filter(has_text="labeler")).to_have_text("labelerdown15:30jam")

    spare = page.get_by_role("article", name="spare")
    expect(spare.get_by_role("row").filter(has_text="lonely")).to_contain_text("stale")
    expect(figure(spare, "OEE")).to_have_text("OEE—")  # no counts: undefined, not 0 %


def test_refreshes_without_reloading(watched: Watched, api_url: str) -> None:
    page = watched.page
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/overview" in r.url else None)
    page.goto(api_url + "/?refresh=1")
    expect(figure(page, "OEE").first).to_have_text("OEE" + story.EXAMPLE_B["OEE"])
    page.evaluate("() => { window.notReloaded = true; }")
    first = page.get_by_role("status").inner_text()
    expect(page.get_by_role("status")).not_to_have_text(first)  # the next update
    expect(figure(page, "OEE").first).to_have_text("OEE" + story.EXAMPLE_B["OEE"])
    assert page.evaluate("() => window.notReloaded") is True
    assert len(asked) >= 2
