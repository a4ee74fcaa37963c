"""A database of our own that tests may stop and start (the session one must stay up)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localenv.cluster import LocalCluster
from tests.services import temporary_cluster


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[LocalCluster]:
    with temporary_cluster("shopfloor-test-outage-") as cluster:
        yield cluster
