"""A database holding the test plant and its readings (written once per module), and clients
of the API over it: in-process (ASGI) with the app's real lifespan, the clock fixed."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import psycopg
import pytest

from api.app import create_app
from config import ShopfloorConfig
from localenv.cluster import LocalCluster
from storage.migrate import migrate
from storage.plant_sync import sync_plant
from storage.writer import BatchWriter
from tests.api.plant import plant, readings, t

AFTER_SHIFT = t("15:00")  # "now" unless a test sets another


@contextlib.contextmanager
def plant_database(
    cluster: LocalCluster, prefix: str = "api", cfg: ShopfloorConfig | None = None
) -> Iterator[str]:
    """A migrated database with the test plant (or `cfg`) synced, readings not yet written;
    dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    base = cluster.url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
            sync_plant(conn, cfg or plant(), now=t("00:00"))
            conn.commit()
        yield url
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def plant_url(pg_cluster: LocalCluster) -> Iterator[str]:
    with plant_database(pg_cluster) as url:
        yield url


async def write_readings(
    url: str, data: dict[tuple[str, str], list[tuple[dt.datetime, float]]] | None = None
) -> int:
    """The examples' readings (or `data`, by machine and tag name) through the batch writer, as
    the collector would store them."""
    with psycopg.connect(url) as conn:
        ids = {(m, n): i for m, n, i in conn.execute("SELECT machine_id, name, id FROM tags")}
    rows = [
        (time, ids[key], value, 0, None)
        for key, samples in (data or readings()).items()
        for time, value in samples
    ]
    writer = await BatchWriter.connect(url)
    try:
        result = await writer.write(rows)
    finally:
        await writer.close()
    assert result.rejected == []
    return result.inserted


@pytest.fixture(scope="module")
async def loaded_url(plant_url: str) -> str:
    await write_readings(plant_url)
    return plant_url


@pytest.fixture(scope="module")
def tag_ids(loaded_url: str) -> dict[tuple[str, str], int]:
    with psycopg.connect(loaded_url) as conn:
        return {(m, n): i for m, n, i in conn.execute("SELECT machine_id, name, id FROM tags")}


ClientFactory = Callable[..., "AsyncClientContext"]


class AsyncClientContext:
    """`async with make_client(...) as c`: the app's lifespan runs around the client."""

    def __init__(self, cfg: ShopfloorConfig, url: str, now: dt.datetime) -> None:
        self.app = create_app(cfg, database_url=url)
        self.app.state.clock = lambda: now
        self._lifespan = self.app.router.lifespan_context(self.app)
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://api.test"
        )

    async def __aenter__(self) -> httpx.AsyncClient:
        await self._lifespan.__aenter__()
        return await self._client.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._client.__aexit__(*exc)
        await self._lifespan.__aexit__(*exc)


@pytest.fixture
def make_client(loaded_url: str) -> ClientFactory:
    def make(
        cfg: ShopfloorConfig | None = None, *, now: dt.datetime = AFTER_SHIFT
    ) -> AsyncClientContext:
        return AsyncClientContext(cfg or plant(), loaded_url, now)

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c
