"""Issue 17: the dashboard of a central API (a config without lines) shows the lines of every
edge that writes into its database, with the figures an edge's own page shows."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import expect

from config import parse_config
from localenv.cluster import LocalCluster
from storage.ownership import release
from storage.plant_sync import sync_plant
from tests.api.conftest import plant_database, write_readings
from tests.browser import story
from tests.browser.conftest import Watched, figure, in_thread, served
from tests.edges import edge_config


@pytest.fixture(scope="module")
def central_url(pg_cluster: LocalCluster) -> Iterator[str]:
    """The story's two lines, each synced by an edge of its own."""
    whole = story.plant()
    with plant_database(pg_cluster, "browser_central", whole) as url:
        with psycopg.connect(url) as conn:
            release(conn, "default")
            sync_plant(conn, edge_config(whole, "packing-pc", {"pack"}), now=story.NOW)
            sync_plant(conn, edge_config(whole, "spare-pc", {"spare"}), now=story.NOW)
        in_thread(write_readings(url, story.readings()))
        yield url


def test_the_plant_overview_shows_every_edges_lines(watched: Watched, central_url: str) -> None:
    central = parse_config("plant: Central\nsettings: {api: {cache_s: 0}}\n")
    with served(central, central_url) as base:
        page = watched.page
        page.goto(base + "/")
        pack = page.get_by_role("article", name="Packing line")
        expect(figure(pack, "OEE")).to_have_text("OEE" + story.EXAMPLE_B["OEE"])
        expect(pack.get_by_role("row").filter(has_text="labeler")).to_have_text(
            "labelerdown15:30jam"
        )
        spare = page.get_by_role("article", name="spare")
        expect(spare.get_by_role("row").filter(has_text="lonely")).to_contain_text("stale")
        expect(page.get_by_role("article")).to_have_count(2)
