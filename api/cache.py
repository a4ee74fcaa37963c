"""A shared, short-lived cache of finished answers (JSON bodies); one computation per key at a
time. What is kept for how long, as a client sees it: docs/api.md, "Cached answers".

    cache = ResultCache(ttl_s=settings.api.cache_s)
    body = await cache.get(key, LIVE, compute, pool)                  # depends on now
    body = await cache.get(key, Validity(("m1", "m2")), compute, pool)  # a window long past

A **live** entry is shared for `ttl_s` from the start of its computation (0: neither kept nor
shared). A **past** entry (a window that ended well before now: api.results) keeps its machines'
`rollup_state.late_seq` values from before its computation and is valid while they still hold
(the batch writer moves them with late readings), for at most `PAST_MAX_AGE_S` (retention may
drop what it was computed from); `LateMarks` reads them at most once per `LATE_CHECK_S`.

Single flight: concurrent requests for one key await one computation (a past one only under the
same late_seq values); a failed computation is not kept, every waiter gets its error. Bounded by
`max_entries` and `max_bytes`, least recently used dropped first; a body over `max_bytes / 16`
is answered but not kept. Per process.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from psycopg_pool import AsyncConnectionPool

from storage.rollups import late_marks

LATE_CHECK_S = 1.0
PAST_MAX_AGE_S = 3600.0
MAX_ENTRIES = 2048
MAX_BYTES = 32 * 1024 * 1024

Compute = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Validity:
    """How long an answer holds: `machines` None: live (ttl); else past, while their late_seq
    values hold."""

    machines: tuple[str, ...] | None = None


LIVE = Validity()


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    computed: int = 0  # computations started
    joined: int = 0  # requests that awaited another request's computation
    evicted: int = 0  # entries dropped for the bounds


@dataclass(slots=True)
class _Entry:
    body: bytes
    born: float  # monotonic time its computation started
    marks: tuple[int, ...] | None  # past: the machines' late_seq before it; None: live


class LateMarks:
    """`rollup_state.late_seq` per machine, read at most once per `every_s` for all requests."""

    def __init__(self, every_s: float = LATE_CHECK_S) -> None:
        self.every_s = every_s
        self._seqs: Mapping[str, int] = {}
        self._read_at = -math.inf
        self._reading: asyncio.Future[None] | None = None

    async def current(self, pool: AsyncConnectionPool) -> Mapping[str, int]:
        """Values read less than `every_s` ago; all of them read before this call returns, so
        before whatever the caller computes next."""
        if time.monotonic() - self._read_at < self.every_s:
            return self._seqs
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read(pool))
        await asyncio.shield(self._reading)
        return self._seqs

    async def _read(self, pool: AsyncConnectionPool) -> None:
        started = time.monotonic()
        async with pool.connection() as conn:
            seqs = await late_marks(conn)
        self._seqs, self._read_at = seqs, started


class ResultCache:
    """Answers by key, live or past (module docstring); per process, bounded."""

    def __init__(
        self,
        *,
        ttl_s: float,
        keep_past: bool = True,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        past_max_age_s: float = PAST_MAX_AGE_S,
        late: LateMarks | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self.keep_past = keep_past  # off only to measure without it (bench/api.py)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.past_max_age_s = past_max_age_s
        self.late = late or LateMarks()
        self.stats = CacheStats()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._running: dict[Hashable, asyncio.Future[bytes]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every answer (the plant model changed under them)."""
        self._entries.clear()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def collect(self) -> Iterator[Metric]:
        """How often answers came from the cache, and its size (a prometheus_client collector)."""
        st = self.stats
        for name, value, what in (
            ("hits_total", st.hits, "answers taken from the cache"),
            ("computed_total", st.computed, "answers computed"),
            ("joined_total", st.joined, "requests that awaited another's computation"),
            ("evicted_total", st.evicted, "entries dropped for the size bounds"),
            ("entries", len(self._entries), "entries kept"),
            ("bytes", self._bytes, "bytes of answers kept"),
        ):
            kind = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
            yield kind(f"shopfloor_api_cache_{name}", what, value=value)

    async def get(
        self, key: Hashable, validity: Validity, compute: Compute, pool: AsyncConnectionPool
    ) -> bytes:
        """The answer for `key`: kept, being computed by another request, or computed now."""
        marks: tuple[int, ...] | None = None
        if validity.machines is not None:
            if not self.keep_past:
                return await self._computed(compute)
            seqs = await self.late.current(pool)
            marks = tuple(seqs.get(m, 0) for m in validity.machines)
        elif self.ttl_s <= 0:
            return await self._computed(compute)
        entry = self._entries.get(key)
        if entry is not None and self._valid(entry, marks, time.monotonic()):
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return entry.body
        flight = (key, marks)
        running = self._running.get(flight)
        if running is not None:
            self.stats.joined += 1
        else:
            running = asyncio.ensure_future(self._compute_and_keep(key, marks, compute))
            self._running[flight] = running
            running.add_done_callback(lambda done: self._finished(flight, done))
        # shielded: a waiter that goes away does not cancel the others' computation
        return await asyncio.shield(running)

    def _finished(self, flight: Hashable, done: asyncio.Future[bytes]) -> None:
        self._running.pop(flight, None)
        if not done.cancelled():
            done.exception()  # retrieved: its waiters, if any are left, raise it

    def _valid(self, entry: _Entry, marks: tuple[int, ...] | None, now: float) -> bool:
        if marks is None:
            return entry.marks is None and now - entry.born < self.ttl_s
        return entry.marks == marks and now - entry.born < self.past_max_age_s

    async def _computed(self, compute: Compute) -> bytes:
        self.stats.computed += 1
        return await compute()

    async def _compute_and_keep(
        self, key: Hashable, marks: tuple[int, ...] | None, compute: Compute
    ) -> bytes:
        born = time.monotonic()
        body = await self._computed(compute)
        self._keep(key, _Entry(body, born, marks))
        return body

    def _keep(self, key: Hashable, entry: _Entry) -> None:
        if len(entry.body) > self.max_bytes // 16:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.body)
            self.stats.evicted += 1
