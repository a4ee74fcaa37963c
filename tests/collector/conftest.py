"""A database of our own that tests may stop and start (the session one must stay up)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from storage.cluster import LocalCluster
from tests.services import free_port, world_traversable_tempdir


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[LocalCluster]:
    base = world_traversable_tempdir("shopfloor-test-outage-")
    cluster = LocalCluster(base=base / "db", port=free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)
