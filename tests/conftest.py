"""Session-wide real services: one TimescaleDB cluster, fresh databases per test, Mosquitto."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from localenv.cluster import LocalCluster
from tests.services import Mosquitto, Publisher, temporary_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalCluster]:
    with temporary_cluster("shopfloor-test-pg-") as cluster:
        yield cluster


@pytest.fixture
def database_url(pg_cluster: LocalCluster) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = pg_cluster.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_cluster.url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir=Path(tmp_path_factory.mktemp("mosquitto"))).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def publisher(mosquitto: Mosquitto) -> AsyncIterator[Publisher]:
    """A plain MQTT publisher on the session broker."""
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()
