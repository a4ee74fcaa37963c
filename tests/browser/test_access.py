"""With api_keys the page asks for a key once, keeps it in the browser and sends it as a Bearer
header; a wrong key gets a clear message."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser import story
from tests.browser.conftest import Watched, figure

REFUSED = "Failed to load resource: the server responded with a status of 401 (Unauthorized)"


def test_key_prompt_then_data(watched: Watched, keyed_api_url: str) -> None:
    page = watched.page
    page.goto(keyed_api_url + "/")
    prompt = page.get_by_role("form", name="API key needed")
    expect(prompt.get_by_role("alert")).to_have_text(
        "This API needs a key (settings.api.api_keys). Enter one; this browser keeps it."
    )

    prompt.get_by_label("API key").fill("not-the-key-0123456789")
    prompt.get_by_role("button", name="Use key").click()
    expect(prompt.get_by_role("alert")).to_have_text(
        "The API refused the key: the bearer token is not a configured API key. "
        "Enter a configured key."
    )

    prompt.get_by_label("API key").fill(story.KEY)
    prompt.get_by_role("button", name="Use key").click()
    pack = page.get_by_role("article", name="Packing line")
    expect(figure(pack, "OEE")).to_have_text("OEE" + story.EXAMPLE_B["OEE"])

    page.reload()  # asked once: the browser keeps the key
    expect(figure(page.get_by_role("article", name="Packing line"), "OEE")).to_have_text(
        "OEE" + story.EXAMPLE_B["OEE"]
    )
    expect(page.get_by_role("form", name="API key needed")).to_have_count(0)

    page.get_by_role("button", name="Forget API key").click()
    expect(page.get_by_role("form", name="API key needed")).to_be_visible()

    # Chromium logs each 401 answer (no key, the wrong key, no key again); nothing else
    assert [e.startswith(f"console: {REFUSED} ") for e in watched.errors] == [True] * 3
    watched.errors.clear()
