"""Bounded queue -> batcher -> database, or the spool while the database is away.

What it guarantees (backpressure, group commit for durable submits, spool and replay, the spool
budget, a writer failure): docs/collector.md. Two choices that shape the code:
- If neither the database nor the spool takes a batch, it is held and retried, and `submit`
  takes nothing more until it is stored: what sits in memory at a crash stays one batch, and the
  sources pause instead (MQTT stays unacknowledged, polls wait).
- If the writer ends on an error nobody foresaw, waiting callers get `PipelineFailed` (nothing
  of theirs is acknowledged) and what is held is written to the spool before the error goes up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from collector.dbsink import DatabaseDown, DatabaseSink
from collector.rows import Rejected, Row
from collector.spool import Batch, Spool
from config.settings import CollectorSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

IDLE_WAKE_S = 1.0  # the writer looks at the spool and the database at least this often
PROGRESS_EVERY_S = 5.0  # replay progress log cadence


class PipelineFailed(RuntimeError):
    """The writer task ended on an unexpected error: nothing more is accepted."""


class NotStored(RuntimeError):
    """Shutting down with neither the database nor room in the spool: these rows are lost."""


class Pipeline:
    def __init__(self, settings: CollectorSettings, db: DatabaseSink, spool: Spool) -> None:
        self.settings = settings
        self.db = db
        self.spool = spool
        self._pending: list[Row] = []
        self._rejected: list[Rejected] = []  # refused input waiting to ride with the next batch
        self._oldest: float | None = None  # monotonic time the oldest pending item arrived
        self._queued = 0  # items submitted and not yet stored (pending + in flight)
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
        self._held: Batch | None = None  # the batch being stored
        self._homeless = False  # neither the database nor the spool takes it: admit nothing
        self._spool_thread = concurrent.futures.ThreadPoolExecutor(1, "spool")
        self.failure: BaseException | None = None
        self.spool_error: str | None = None  # the spool's disk failed on the last append
        self.batches = 0
        self.spooled_rows = 0
        self.replayed_rows = 0
        self.lost_rows = 0  # at shutdown with nowhere to put them, or when the writer failed
        self._progress_at = 0.0

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def homeless(self) -> bool:
        """A batch waits for the database or room in the spool; nothing new is taken."""
        return self._homeless

    async def submit(
        self, rows: Sequence[Row], rejected: Sequence[Rejected] = (), *, durable: bool = False
    ) -> None:
        """Queue rows (and refused input); with `durable`, return only once they are in the
        database or spool. Raises PipelineFailed once the writer has failed."""
        n = len(rows) + len(rejected)
        if not n:
            return
        self._check_alive()
        if self._closing:
            raise RuntimeError("pipeline is closed")
        cap = self.settings.queue_rows
        async with self._admission, self._cond:
            await self._cond.wait_for(
                lambda: (
                    self.failure is not None
                    or (not self._homeless and (self._queued == 0 or self._queued + n <= cap))
                )
            )
            self._check_alive()
            self._pending.extend(rows)
            self._rejected.extend(rejected)
            self._queued += n
            self._submitted += n
            if self._oldest is None:
                self._oldest = time.monotonic()
            fut: asyncio.Future[None] | None = None
            if durable:
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append((self._submitted, fut))
            self._wake.set()
        if fut is not None:
            await fut

    def _check_alive(self) -> None:
        if self.failure is not None:
            raise PipelineFailed(f"the writer failed: {self.failure!r}") from self.failure

    async def run(self) -> None:
        """The writer task: until `close()` and everything pending is stored."""
        try:
            await self._run()
        except BaseException as exc:
            self.failure = exc
            await self._fail_waiters()
            await self._rescue()
            raise

    async def _run(self) -> None:
        while True:
            await self._wait_for_work()
            if self._pending or self._rejected:
                await self._store_batch()
            if len(self.spool) and self.db.up:
                await self._replay_one()
            elif len(self.spool) and self.db.retry_due() and await self.db.connect():
                log.info("replaying %d spooled readings", self.spool.stats().rows)
            if self._closing and not self._pending and not self._rejected:
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
        k = min(len(self._pending), self.settings.batch_rows)
        if k == len(self._pending):  # the usual case: take the list, copy nothing
            rows, self._pending = self._pending, []
        else:
            rows, self._pending = self._pending[:k], self._pending[k:]
        batch = Batch(rows, self._rejected)
        self._rejected = []
        n = len(rows) + len(batch.rejected)
        self._held = batch
        self._oldest = time.monotonic() if self._pending else None
        attempts = 0
        lost: Exception | None = None
        while not await self._store(batch):
            self._homeless = True  # submit takes nothing more until this batch has a home
            attempts += 1
            if self._closing and attempts >= 3:  # and so will every batch after it
                dropped = n + len(self._pending) + len(self._rejected)
                n += len(self._pending) + len(self._rejected)
                self._pending, self._rejected = [], []
                self.lost_rows += dropped
                log.error(
                    "shutting down with the database away and the spool full: "
                    "%d readings not stored",
                    dropped,
                )
                lost = NotStored(f"{dropped} readings not stored: no database, spool full")
                break
            await asyncio.sleep(IDLE_WAKE_S)  # nowhere to put it: hold it, submit blocks
        self._held = None
        self.batches += 1
        self._stored += n
        done = [f for seq, f in self._waiters if seq <= self._stored]
        self._waiters = [(seq, f) for seq, f in self._waiters if seq > self._stored]
        for f in done:  # a waiter whose rows were lost is told so: its source must not ack
            if f.done():
                continue
            if lost is None:
                f.set_result(None)
            else:
                f.set_exception(lost)
        async with self._cond:
            self._queued -= n
            self._homeless = False
            self._cond.notify_all()

    async def _store(self, batch: Batch) -> bool:
        if self.db.retry_due():
            try:
                await self.db.write(batch.rows, batch.rejected)
                return True
            except DatabaseDown:
                pass
        stored = await self._spool_append(batch)
        if stored:
            self.spooled_rows += len(batch.rows) + len(batch.rejected)
        return stored

    async def _spool_append(self, batch: Batch) -> bool:
        """The spool takes the batch; False at its budget, or while its disk fails (logged once:
        the batch is held and offered again, like at the budget)."""
        try:
            stored = await self._in_spool_thread(self.spool.append, batch.rows, batch.rejected)
        except (sqlite3.Error, OSError) as exc:
            if self.spool_error is None:
                log.error("the spool cannot store a batch (holding it, retrying): %s", exc)
            self.spool_error = f"{type(exc).__name__}: {exc}"
            return False
        if self.spool_error is not None:
            log.info("the spool stores batches again")
            self.spool_error = None
        return stored

    async def _replay_one(self) -> None:
        oldest = await self._in_spool_thread(self.spool.oldest)
        if oldest is None:
            return
        batch_id, batch = oldest
        try:
            await self.db.write(batch.rows, batch.rejected)
        except DatabaseDown:
            return
        await self._in_spool_thread(self.spool.delete, batch_id)
        self.replayed_rows += len(batch.rows) + len(batch.rejected)
        left = self.spool.stats()
        now = time.monotonic()
        if not left.batches:
            log.info("spool drained: %d readings replayed", self.replayed_rows)
        elif now - self._progress_at >= PROGRESS_EVERY_S:
            self._progress_at = now
            log.info("replaying the spool: %d readings left", left.rows)

    async def _fail_waiters(self) -> None:
        """After the writer failed: callers waiting for durability or for room learn it now."""
        error = PipelineFailed(f"the writer failed: {self.failure!r}")
        for _, f in self._waiters:
            if not f.done():
                f.set_exception(error)
        self._waiters = []
        async with self._cond:
            self._cond.notify_all()

    async def _rescue(self) -> None:
        """After the writer failed: what it held goes to the spool, so a restart replays it."""
        rows = [*(self._held.rows if self._held else ()), *self._pending]
        rejected = [*(self._held.rejected if self._held else ()), *self._rejected]
        self._held, self._pending, self._rejected = None, [], []
        n = len(rows) + len(rejected)
        if not n:
            return
        try:
            stored = await asyncio.shield(self._in_spool_thread(self.spool.append, rows, rejected))
        except (sqlite3.Error, OSError, asyncio.CancelledError) as exc:
            stored, why = False, repr(exc)
        else:
            why = "the spool is full"
        if stored:
            log.error("the writer failed; %d readings it held were written to the spool", n)
        else:
            self.lost_rows += n
            log.error("the writer failed; %d readings it held are lost (%s)", n, why)

    async def _in_spool_thread(self, fn: Callable[..., T], *args: object) -> T:
        """SQLite calls block on fsync: one worker thread, so they stay in order."""
        return await asyncio.get_running_loop().run_in_executor(self._spool_thread, fn, *args)

    def shutdown(self) -> None:
        self._spool_thread.shutdown(wait=True)
