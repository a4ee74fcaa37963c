"""The result cache: the same answers as without it, one computation for concurrent asks, past
windows kept until late data marks them, live ones for cache_s, and its bounds."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from api.cache import LIVE, ResultCache
from config import parse_config
from localenv.cluster import LocalCluster
from storage.writer import BatchWriter
from tests.api.conftest import AFTER_SHIFT, AsyncClientContext, plant_database, write_readings
from tests.api.plant import PLANT, plant, t
from tests.services import eventually

SHIFT = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T14:00:00Z"}
SO_FAR = {"start": "2026-03-02T06:00:00Z"}  # runs to now: a live answer
# One request of every cached route: past windows, default windows (now is after the shift:
# the last shift, past), windows reaching now (live), current states, tag series.
REQUESTS = [
    ("/api/v1/lines", {}),
    ("/api/v1/lines/ld", {}),
    ("/api/v1/machines", {}),
    ("/api/v1/machines/ma", {}),
    ("/api/v1/lines/la/kpis", SHIFT),
    ("/api/v1/lines/ld/kpis", {}),
    ("/api/v1/lines/lx/kpis", SO_FAR),
    ("/api/v1/machines/mb/kpis", SHIFT),
    ("/api/v1/machines/m2/kpis", SO_FAR),
    ("/api/v1/lines/ld/kpis/series", {**SHIFT, "bucket": "1h"}),
    ("/api/v1/lines/la/kpis/series", {"bucket": "shift"}),
    ("/api/v1/machines/ma/kpis/series", {**SO_FAR, "bucket": "15m"}),
    ("/api/v1/machines/ma/timeline", SHIFT),
    ("/api/v1/machines/mb/timeline", SO_FAR),
    ("/api/v1/lines/la/downtime", SHIFT),
    ("/api/v1/machines/m1/downtime", {}),
    ("/api/v1/tags/ma/temp/series", {**SHIFT, "bucket": "15m", "agg": "max"}),
    ("/api/v1/tags/ma/temp/series", {**SHIFT, "raw": "true", "limit": "100"}),
]


def uncached(ctx: AsyncClientContext) -> AsyncClientContext:
    """The same app without a cache: live answers not shared, past ones not kept."""
    ctx.app.state.cache = ResultCache(ttl_s=0, keep_past=False)
    return ctx


async def test_answers_from_the_cache_are_the_engines(loaded_url: str) -> None:
    ctx = AsyncClientContext(plant(), loaded_url, AFTER_SHIFT)
    cache: ResultCache = ctx.app.state.cache
    async with (
        ctx as cached,
        uncached(AsyncClientContext(plant(), loaded_url, AFTER_SHIFT)) as direct,
    ):
        for path, params in REQUESTS:
            first = await cached.get(path, params=params)
            again = await cached.get(path, params=params)
            fresh = await direct.get(path, params=params)
            assert first.status_code == 200, (path, first.text)
            assert first.headers["content-type"] == "application/json"
            assert first.json() == again.json() == fresh.json(), path
        assert cache.stats.hits == len(REQUESTS)
        assert cache.stats.computed == len(REQUESTS)
        metrics = (await cached.get("/metrics")).text
    assert f"shopfloor_api_cache_hits_total {len(REQUESTS)}" in metrics


async def test_spellings_of_one_request_are_one_answer(loaded_url: str) -> None:
    """Parameters in another order, or one that says its default (`source=auto`), ask the same
    question: one computation. Another value is another answer."""
    start, end, bucket = ("start", SHIFT["start"]), ("end", SHIFT["end"]), ("bucket", "1h")
    spellings = [
        [start, end, bucket],
        [bucket, ("source", "auto"), end, start],
        [("source", "auto"), start, bucket, end],
    ]
    ctx = AsyncClientContext(plant(), loaded_url, AFTER_SHIFT)
    cache: ResultCache = ctx.app.state.cache
    async with ctx as c:
        path = "/api/v1/lines/ld/kpis/series"
        answers = [await c.get(path, params=params) for params in spellings]
        assert [a.status_code for a in answers] == [200] * 3
        assert len({a.content for a in answers}) == 1
        assert (cache.stats.computed, cache.stats.hits) == (1, 2)
        raw = await c.get(path, params=[*spellings[0], ("source", "raw")])
        other = await c.get(path, params=[start, end, ("bucket", "15m")])
    assert (raw.status_code, other.status_code) == (200, 200)
    assert (cache.stats.computed, cache.stats.hits) == (3, 2)


@pytest.mark.parametrize("params", [SHIFT, SO_FAR], ids=["past", "live"])
async def test_concurrent_asks_share_one_computation(
    loaded_url: str, params: dict[str, str]
) -> None:
    """The readings are locked, so the first computation waits there until every other request
    has joined it."""
    n = 12
    ctx = AsyncClientContext(plant(), loaded_url, AFTER_SHIFT)
    cache: ResultCache = ctx.app.state.cache
    async with ctx as c:
        with psycopg.connect(loaded_url) as lock:
            lock.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            asks = [
                asyncio.create_task(c.get("/api/v1/lines/ld/kpis", params=params)) for _ in range(n)
            ]
            await eventually(lambda: cache.stats.joined == n - 1, what=lambda: str(cache.stats))
            lock.rollback()
        answers = await asyncio.gather(*asks)
    assert cache.stats.computed == 1
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert answers[0].json()["kpis"]["oee"] == pytest.approx(0.802083, abs=1e-6)


# --- answers change when they should -------------------------------------------------------------


@pytest.fixture
def own_url(pg_cluster: LocalCluster) -> Iterator[str]:
    """A database of the test plant that a test may change."""
    with plant_database(pg_cluster, "apic") as url:
        yield url


@pytest.fixture
async def loaded_own_url(own_url: str) -> AsyncIterator[str]:
    await write_readings(own_url)
    yield own_url


def _state_tag(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT id FROM tags WHERE machine_id = 'ma' AND name = 'state'")
        return row.fetchone()[0]  # type: ignore[index]


def insert_unmarked(url: str, time: dt.datetime, value: float) -> None:
    """A reading stored behind the writer's back: nothing marks it late."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO readings (time, tag_id, value) VALUES (%s, %s, %s)",
            (time, _state_tag(url), value),
        )


async def write_late(url: str, time: dt.datetime, value: float) -> None:
    """A reading stored as the collector stores it: the writer marks it late (months old)."""
    writer = await BatchWriter.connect(url)
    try:
        result = await writer.write([(time, _state_tag(url), value, 0, None)])
    finally:
        await writer.close()
    assert result.inserted == 1


DOWN = 2.0


async def test_late_data_changes_a_cached_past_answer(loaded_own_url: str) -> None:
    url, path = loaded_own_url, "/api/v1/machines/ma/kpis"
    async with (
        AsyncClientContext(plant(), url, AFTER_SHIFT) as cached,
        uncached(AsyncClientContext(plant(), url, AFTER_SHIFT)) as direct,
    ):
        before = (await cached.get(path, params=SHIFT)).json()
        assert before["kpis"]["short_stop_s"] == 0

        # 20 s down between two running heartbeats, not marked: the cached answer stands
        insert_unmarked(url, t("06:30:10"), DOWN)
        assert (await cached.get(path, params=SHIFT)).json() == before
        engine_now = (await direct.get(path, params=SHIFT)).json()
        assert engine_now["kpis"]["short_stop_s"] == pytest.approx(20)

        # a late reading through the writer moves late_seq: the answer follows the engine
        await write_late(url, t("07:30:10"), DOWN)
        after = dict(before)

        async def ask() -> None:
            after.update((await cached.get(path, params=SHIFT)).json())

        await eventually(lambda: after.get("kpis") != before["kpis"], each=ask, interval=0.2)
        assert after == (await direct.get(path, params=SHIFT)).json()
        assert after["kpis"]["short_stop_s"] == pytest.approx(40)


async def test_live_answers_are_shared_for_cache_s(loaded_own_url: str) -> None:
    url, path = loaded_own_url, "/api/v1/machines/ma/kpis"
    shared = AsyncClientContext(plant(), url, AFTER_SHIFT)
    shared.app.state.cache = ResultCache(ttl_s=3600)  # no test takes an hour
    no_ttl = parse_config(PLANT + "settings:\n  api:\n    cache_s: 0\n")
    async with shared as c, AsyncClientContext(no_ttl, url, AFTER_SHIFT) as unshared:
        before = (await c.get(path, params=SO_FAR)).json()
        assert (await unshared.get(path, params=SO_FAR)).json() == before
        insert_unmarked(url, t("06:30:10"), DOWN)
        assert (await c.get(path, params=SO_FAR)).json() == before  # within cache_s
        changed = (await unshared.get(path, params=SO_FAR)).json()
        assert changed["kpis"]["short_stop_s"] == pytest.approx(20)


async def test_a_window_that_just_ended_is_live(loaded_own_url: str) -> None:
    """Ended 2 minutes before now, inside the settle margin: late-unmarked readings may still
    come, so it is not kept as past (here with cache_s 0: not kept at all)."""
    url, path = loaded_own_url, "/api/v1/machines/ma/kpis"
    no_ttl = parse_config(PLANT + "settings:\n  api:\n    cache_s: 0\n")
    async with AsyncClientContext(no_ttl, url, t("14:02")) as c:
        before = (await c.get(path, params=SHIFT)).json()
        insert_unmarked(url, t("06:30:10"), DOWN)
        after = (await c.get(path, params=SHIFT)).json()
    assert after["kpis"]["short_stop_s"] == pytest.approx(20)
    assert before["kpis"]["short_stop_s"] == 0


# --- bounds ---------------------------------------------------------------------------------------


def _body(text: str, size: int) -> bytes:
    return text.encode().ljust(size, b" ")


async def _get(cache: ResultCache, key: str, size: int = 10) -> bytes:
    async def compute() -> bytes:
        return _body(key, size)

    return await cache.get(key, LIVE, compute, None)  # type: ignore[arg-type]  # live: no pool


async def test_least_recently_used_entries_go_first() -> None:
    cache = ResultCache(ttl_s=3600, max_entries=3)
    for key in ("a", "b", "c"):
        await _get(cache, key)
    await _get(cache, "a")  # used: now b is the oldest
    await _get(cache, "d")
    assert (len(cache), cache.stats.evicted, cache.stats.hits) == (3, 1, 1)
    computed = cache.stats.computed
    await _get(cache, "a")
    await _get(cache, "b")  # dropped: computed again
    assert cache.stats.computed == computed + 1


async def test_memory_is_bounded() -> None:
    cache = ResultCache(ttl_s=3600, max_bytes=1600)  # bodies up to 100 bytes are kept
    for i in range(20):
        await _get(cache, f"k{i}", 100)
    assert cache.size_bytes <= 1600 and len(cache) == 16
    await _get(cache, "big", 101)
    await _get(cache, "big", 101)
    assert cache.stats.computed == 22  # the big one each time
    assert cache.size_bytes == sum(len(e.body) for e in cache._entries.values())


async def test_failures_and_zero_ttl_are_not_kept() -> None:
    cache = ResultCache(ttl_s=3600)
    calls = []

    async def failing() -> bytes:
        calls.append(1)
        raise RuntimeError("database went away")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get("k", LIVE, failing, None)  # type: ignore[arg-type]
    assert len(calls) == 2 and len(cache) == 0
    off = ResultCache(ttl_s=0)
    await _get(off, "k")
    await _get(off, "k")
    assert off.stats.computed == 2 and len(off) == 0
