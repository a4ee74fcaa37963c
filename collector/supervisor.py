"""The collector's long-lived tasks, watched: none ends or fails silently; each has a
`TaskHealth` that /healthz reports (docs/collector.md, Tasks).

A **critical** task (the pipeline's writer) cannot be replaced without losing track of what it
holds: its failure goes to `on_fatal`, which stops the collector. Any other task is restarted
after a back-off; a **periodic job** runs on, its failure reported until a later run succeeds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from config.health import TaskReport

log = logging.getLogger(__name__)

RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0
SETTLED_S = 60.0  # a restarted task that ran this long is healthy again


class CollectorFailed(RuntimeError):
    """A task the collector cannot run without failed; the process should exit non-zero."""


class TaskEnded(RuntimeError):
    """A task returned while the collector was still running."""


@dataclass
class TaskHealth:
    name: str
    critical: bool = False
    running: bool = False
    failures: int = 0  # unexpected errors in this process's life
    error: str | None = None  # the current one; None while healthy
    failed_at: dt.datetime | None = None
    # DB-connectivity errors of a job: expected while the database is away (the database's own
    # health says so), so they make the job degraded, not failing.
    expected: bool = False

    def report(self) -> TaskReport:
        return {
            "running": self.running,
            "critical": self.critical,
            "failures": self.failures,
            "error": self.error,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
        }


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


class Supervisor:
    def __init__(self, on_fatal: Callable[[str, BaseException], None]) -> None:
        self._on_fatal = on_fatal
        self.tasks: dict[str, TaskHealth] = {}
        self._running: list[asyncio.Task[None]] = []
        self.stopping = False

    def start(
        self, name: str, run: Callable[[], Awaitable[None]], *, critical: bool = False
    ) -> asyncio.Task[None]:
        """Run `run()` in a watched task; a non-critical one is restarted when it fails."""
        health = self.tasks.setdefault(name, TaskHealth(name, critical))
        task = asyncio.create_task(self._watch(health, run), name=name)
        self._running.append(task)
        return task

    def every(
        self,
        name: str,
        period_s: float,
        job: Callable[[], Awaitable[None]],
        *,
        expected: tuple[type[BaseException], ...] = (),
    ) -> asyncio.Task[None]:
        """Run `job()` every `period_s`; `expected` errors are reported but not tracebacked."""
        health = self.tasks.setdefault(name, TaskHealth(name))

        async def periodic() -> None:
            while True:
                await self._run_job(health, job, expected)
                await asyncio.sleep(period_s)

        return self.start(name, periodic)

    async def _run_job(
        self,
        health: TaskHealth,
        job: Callable[[], Awaitable[None]],
        expected: tuple[type[BaseException], ...],
    ) -> None:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error, known = describe(exc), isinstance(exc, expected)
            if error == health.error:
                log.debug("%s failed again: %s", health.name, error)
            elif known:
                log.warning("%s failed (retried next interval): %s", health.name, error)
            else:
                log.error("%s failed (retried next interval)", health.name, exc_info=exc)
            if not known:
                health.failures += 1
            health.error, health.expected = error, known
            health.failed_at = dt.datetime.now(dt.UTC)
            return
        if health.error is not None:
            log.info("%s works again", health.name)
            health.error, health.expected = None, False

    async def _watch(self, health: TaskHealth, run: Callable[[], Awaitable[None]]) -> None:
        delay = RESTART_MIN_S
        while True:
            health.running = True
            started = time.monotonic()
            try:
                await run()
            except asyncio.CancelledError:
                health.running = False
                raise
            except Exception as exc:
                error: BaseException = exc
            else:
                if self.stopping:
                    health.running = False
                    return
                error = TaskEnded(f"{health.name} returned while the collector runs")
            health.running = False
            health.failures += 1
            health.error, health.expected = describe(error), False
            health.failed_at = dt.datetime.now(dt.UTC)
            if health.critical:
                log.critical("%s failed; stopping the collector", health.name, exc_info=error)
                self._on_fatal(health.name, error)
                return
            if time.monotonic() - started >= SETTLED_S:
                delay = RESTART_MIN_S
            log.error("%s failed; restarting in %.0f s", health.name, delay, exc_info=error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)
            self._settle_later(health)

    def _settle_later(self, health: TaskHealth) -> None:
        """The error stands until the restarted task has run SETTLED_S."""
        failures = health.failures

        def settled() -> None:
            if health.failures == failures and health.running:
                health.error = None
                log.info("%s runs again", health.name)

        asyncio.get_running_loop().call_later(SETTLED_S, settled)

    async def cancel(self, names: set[str] | None = None) -> None:
        """Cancel the watched tasks (those named, or all) and wait for them."""
        tasks = [t for t in self._running if names is None or t.get_name() in names]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
