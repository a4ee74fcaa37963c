"""Bounded queue -> batcher -> database, or the spool while the database is away.

- `submit` waits while `queue_rows` readings are held (backpressure, never unbounded memory);
  concurrent submits enter the queue in the order they were called.
- A batch is written when it reaches `batch_rows` or its oldest reading is `batch_age_ms` old,
  or at once when a caller waits for durability (MQTT acknowledges only after `submit(...,
  durable=True)` returns): that caller's rows then ride with whatever else is queued, so a busy
  broker gets group commits, not one transaction per message.
- A batch the database does not take goes to the spool (fsync'd) and counts as stored. While
  the database is up, spooled batches are replayed oldest first between live batches and
  deleted after their commit.
- If neither can take a batch (database away, spool at its budget with policy `block`), the
  batch is held and retried: the queue fills and `submit` blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from collector.dbsink import DatabaseDown, DatabaseSink
from collector.rows import Row
from collector.spool import Spool
from config.settings import CollectorSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

IDLE_WAKE_S = 1.0  # the writer looks at the spool and the database at least this often
PROGRESS_EVERY_S = 5.0  # replay progress log cadence


class Pipeline:
    def __init__(self, settings: CollectorSettings, db: DatabaseSink, spool: Spool) -> None:
        self.settings = settings
        self.db = db
        self.spool = spool
        self._pending: list[Row] = []
        self._oldest: float | None = None  # monotonic time the oldest pending row arrived
        self._queued = 0  # rows submitted and not yet stored (pending + in flight)
        self._submitted = 0  # sequence numbers: a waiter is done when `_stored` reaches its own
        self._stored = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._cond = asyncio.Condition()
        # Admission in call order: without it a later, smaller submit could take the room an
        # earlier waiter was woken for, and concurrent sink calls (MQTT keeps several in flight)
        # would enter the queue out of order. asyncio.Lock hands over to its waiters in FIFO.
        self._admission = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closing = False
        self._spool_thread = concurrent.futures.ThreadPoolExecutor(1, "spool")
        self.batches = 0
        self.spooled_rows = 0
        self.replayed_rows = 0
        self.lost_rows = 0  # only at shutdown with the database away and the spool full
        self._progress_at = 0.0

    @property
    def queued(self) -> int:
        return self._queued

    async def submit(self, rows: Sequence[Row], *, durable: bool = False) -> None:
        """Queue rows; with `durable`, return only once they are in the database or spool."""
        if not rows:
            return
        if self._closing:
            raise RuntimeError("pipeline is closed")
        cap = self.settings.queue_rows
        async with self._admission, self._cond:
            await self._cond.wait_for(lambda: self._queued == 0 or self._queued + len(rows) <= cap)
            self._pending.extend(rows)
            self._queued += len(rows)
            self._submitted += len(rows)
            if self._oldest is None:
                self._oldest = time.monotonic()
            fut: asyncio.Future[None] | None = None
            if durable:
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append((self._submitted, fut))
            self._wake.set()
        if fut is not None:
            await fut

    async def run(self) -> None:
        """The writer task: until `close()` and everything pending is stored."""
        while True:
            await self._wait_for_work()
            if self._pending:
                await self._store_batch()
            if len(self.spool) and self.db.up:
                await self._replay_one()
            elif len(self.spool) and self.db.retry_due() and await self.db.connect():
                log.warning("replaying %d spooled readings", self.spool.stats().rows)
            if self._closing and not self._pending:
                return

    async def close(self) -> None:
        """Stop accepting; the running `run()` stores what is pending, then returns."""
        self._closing = True
        self._wake.set()

    async def _wait_for_work(self) -> None:
        s = self.settings
        while True:
            if self._closing or self._waiters or len(self._pending) >= s.batch_rows:
                return
            if len(self.spool) and self.db.up:
                return  # replay at full speed
            timeout = IDLE_WAKE_S
            if self._oldest is not None:
                timeout = self._oldest + s.batch_age_ms / 1000 - time.monotonic()
                if timeout <= 0:
                    return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(timeout, IDLE_WAKE_S))
            except TimeoutError:
                if self._oldest is None:
                    return  # idle wake-up: look at the spool

    async def _store_batch(self) -> None:
        n = min(len(self._pending), self.settings.batch_rows)
        if n == len(self._pending):  # the usual case: take the list, copy nothing
            batch, self._pending = self._pending, []
        else:
            batch, self._pending = self._pending[:n], self._pending[n:]
        self._oldest = time.monotonic() if self._pending else None
        attempts = 0
        while not await self._store(batch):
            attempts += 1
            if self._closing and attempts >= 3:
                self.lost_rows += n
                log.error(
                    "shutting down with the database away and the spool full: "
                    "%d readings not stored",
                    n,
                )
                break
            await asyncio.sleep(IDLE_WAKE_S)  # nowhere to put it: hold it, submit blocks
        self.batches += 1
        self._stored += n
        done = [f for seq, f in self._waiters if seq <= self._stored]
        self._waiters = [(seq, f) for seq, f in self._waiters if seq > self._stored]
        for f in done:
            if not f.done():
                f.set_result(None)
        async with self._cond:
            self._queued -= n
            self._cond.notify_all()

    async def _store(self, batch: list[Row]) -> bool:
        if self.db.retry_due():
            try:
                await self.db.write(batch)
                return True
            except DatabaseDown:
                pass
        stored = await self._in_spool_thread(self.spool.append, batch)
        if stored:
            self.spooled_rows += len(batch)
        return stored

    async def _replay_one(self) -> None:
        oldest = await self._in_spool_thread(self.spool.oldest)
        if oldest is None:
            return
        batch_id, rows = oldest
        try:
            await self.db.write(rows)
        except DatabaseDown:
            return
        await self._in_spool_thread(self.spool.delete, batch_id)
        self.replayed_rows += len(rows)
        left = self.spool.stats()
        now = time.monotonic()
        if not left.batches:
            log.warning("spool drained: %d readings replayed", self.replayed_rows)
        elif now - self._progress_at >= PROGRESS_EVERY_S:
            self._progress_at = now
            log.info("replaying the spool: %d readings left", left.rows)

    async def _in_spool_thread(self, fn: Callable[..., T], *args: object) -> T:
        """SQLite calls block on fsync: one worker thread, so they stay in order."""
        return await asyncio.get_running_loop().run_in_executor(self._spool_thread, fn, *args)

    def shutdown(self) -> None:
        self._spool_thread.shutdown(wait=True)
