"""Real-browser fixtures: the story's database (tests/browser/story.py), the real API served over
a loopback socket in a thread with its clock fixed at story.NOW, and Debian's Chromium driven by
Playwright's sync API (no browser download).

Every page a test gets refuses every request that does not go to 127.0.0.1 (recorded in
`page.outside`), collects console errors and uncaught exceptions (asserted empty after the test
unless the test took them with `page.errors.clear()`), and writes a screenshot to the test's
output folder (pytest's tmp_path) when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Route,
    ViewportSize,
    sync_playwright,
)

from api.app import create_app
from api.server import serve
from config import ShopfloorConfig
from config.settings import ApiSettings
from localenv.browser import CHROMIUM, CHROMIUM_ARGS
from localenv.cluster import LocalCluster
from tests.api.conftest import plant_database, write_readings
from tests.browser import story
from tests.services import free_port

WALL: ViewportSize = {"width": 1920, "height": 1080}
PHONE: ViewportSize = {"width": 390, "height": 844}


def in_thread(coro: Coroutine[Any, Any, object]) -> None:
    """Run `coro` to the end on a loop of its own: pytest-asyncio's loop may be running here."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="package")
def story_url(pg_cluster: LocalCluster) -> Iterator[str]:
    """A database holding the story's plant and readings, dropped after the session."""
    with plant_database(pg_cluster, "browser", story.plant()) as url:
        in_thread(write_readings(url, story.readings()))
        yield url


@contextlib.contextmanager
def served(cfg: ShopfloorConfig, url: str) -> Iterator[str]:
    """The real API (api.server.serve, as `shopfloor serve` runs it) in a thread of its own;
    yields its base URL. Its clock is story.NOW, so "the current shift" is the story's."""
    app = create_app(cfg, database_url=url)
    app.state.clock = lambda: story.NOW
    port = free_port()
    settings = ApiSettings(host="127.0.0.1", port=port, api_keys=cfg.settings.api.api_keys)
    loop = asyncio.new_event_loop()
    ready = asyncio.Event()
    task = loop.create_task(serve(app, settings, ready=ready))

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # how it is stopped
            loop.run_until_complete(task)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(ready.wait(), loop).result(timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=30)
        loop.close()


@pytest.fixture(scope="package")
def api_url(story_url: str) -> Iterator[str]:
    with served(story.plant(), story_url) as base:
        yield base


@pytest.fixture(scope="package")
def keyed_api_url(story_url: str) -> Iterator[str]:
    with served(story.plant(keys=True), story_url) as base:
        yield base


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Package-scoped, not session: while Playwright's sync API is open, its event loop counts as
    running in this thread, and the async tests of later packages could not run theirs."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watched:
    """What a page did that a test asserts on."""

    page: Page
    outside: list[str] = field(default_factory=list)  # refused non-loopback requests
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every request the browser sent


def figure(scope: Page | Locator, label: str) -> Locator:
    """A figure tile as a person finds it: by its label (role group, named by the label)."""
    return scope.get_by_role("group", name=label, exact=True)


def loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname == "127.0.0.1"


@contextlib.contextmanager
def watching(browser: Browser, viewport: ViewportSize, shot: Path) -> Iterator[Watched]:
    """A fresh browser context and page (see the module's docstring); `shot` is written at the
    end, then the page must have made no outside request and logged no error."""
    context = browser.new_context(viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)  # a hang guard: the page answers in well under a second
    page = context.new_page()
    w = Watched(page)

    def route(r: Route) -> None:
        w.requests.append(r.request.url)
        if loopback(r.request.url):
            r.continue_()
        else:
            w.outside.append(r.request.url)
            r.abort("internetdisconnected")

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            w.errors.append(f"console: {msg.text} ({msg.location.get('url')})")

    context.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda exc: w.errors.append(f"uncaught: {exc}"))
    try:
        yield w
        page.screenshot(path=shot, full_page=True)
        assert w.errors == [], w.errors
        assert w.outside == [], w.outside
    finally:
        context.close()


@pytest.fixture
def watched(browser: Browser, tmp_path: Path) -> Iterator[Watched]:
    """A page on a 1920x1080 wall screen; its screenshot is tmp_path/page.png."""
    with watching(browser, WALL, tmp_path / "page.png") as w:
        yield w


@pytest.fixture
def phone(browser: Browser, tmp_path: Path) -> Iterator[Watched]:
    """A page on a 390x844 phone screen; its screenshot is tmp_path/phone.png."""
    with watching(browser, PHONE, tmp_path / "phone.png") as w:
        yield w
