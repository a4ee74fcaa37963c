"""`/`, `/docs` and `/redoc` with the network cut: the browser refuses every request that does not
go to 127.0.0.1 (tests/browser/conftest.py), and none is asked for."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Watched, loopback

TITLE = "shopfloor API: Browser test plant"


def assert_offline(watched: Watched, asset: str) -> None:
    assert watched.outside == []
    assert watched.requests, "the page made no request at all"
    assert all(loopback(url) for url in watched.requests), watched.requests
    assert any(url.endswith(asset) for url in watched.requests), watched.requests


def test_dashboard_offline(watched: Watched, api_url: str) -> None:
    watched.page.goto(api_url + "/#/line/pack")
    expect(watched.page.get_by_role("heading", name="Downtime by reason")).to_be_visible()
    assert_offline(watched, "/static/dashboard/app.js")


def test_swagger_ui_offline(watched: Watched, api_url: str) -> None:
    page = watched.page
    page.goto(api_url + "/docs")
    expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    expect(page.get_by_text("/api/v1/lines/{line}/windows")).to_be_visible()
    assert_offline(watched, "/static/docs/swagger-ui-bundle.js")


def test_redoc_offline(watched: Watched, api_url: str) -> None:
    page = watched.page
    page.goto(api_url + "/redoc")
    expect(page.get_by_role("heading", name=TITLE, level=1)).to_be_visible()
    expect(page.get_by_role("menuitem", name="overview")).to_be_visible()
    assert_offline(watched, "/static/docs/redoc.standalone.js")
    # ReDoc's side menu always shows Redocly's logo from their CDN; the page's security policy
    # (api/dashboard/docs.py) keeps the browser from asking for it, and Chromium says so
    assert len(watched.errors) == 1
    assert "image 'https://cdn.redoc.ly/redoc/logo-mini.svg'" in watched.errors[0]
    assert "violates the following Content Security Policy" in watched.errors[0]
    watched.errors.clear()


@pytest.mark.parametrize("where", ["/", "/#/line/pack", "/#/machine/filler"])
def test_phone_has_no_horizontal_scroll(phone: Watched, api_url: str, where: str) -> None:
    page = phone.page
    page.goto(api_url + where)
    expect(page.get_by_role("group", name="OEE").first).to_contain_text("69.8 %")
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide on a {width[1]} px screen"
