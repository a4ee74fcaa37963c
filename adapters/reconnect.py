"""The one reconnect policy of every adapter: how long to wait, and what to log.

`Backoff`: the wait after a failure doubles from a first delay up to a cap, and starts over after
a success. `FailureLog`: what fails (a connection, a session, one unit behind a gateway) is logged
at ERROR the first time, at DEBUG while it keeps failing, at INFO when it recovers (Home
Assistant's rule), through the adapter's own logger, so a dead PLC does not flood the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging


class Backoff:
    """Delays that double from `first` up to `most`; `reset()` after a success starts over."""

    __slots__ = ("_delay", "first", "most")

    def __init__(self, first: float, most: float) -> None:
        self.first = first
        self.most = most
        self._delay = first

    def next(self) -> float:
        """The delay to wait now; the next one is twice as long, at most `most`."""
        delay = self._delay
        self._delay = min(delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self._delay = self.first


class FailureLog:
    """ERROR when `what` first fails, DEBUG while it keeps failing, INFO when it recovers."""

    def __init__(self, log: logging.Logger, source: str) -> None:
        self._log = log
        self._source = source
        self.failing: set[str] = set()  # what fails now

    def failed(self, what: str, error: BaseException | str, *, exc_info: bool = False) -> None:
        text = str(error).removeprefix(f"{self._source}: ") or repr(error)
        if what in self.failing:
            self._log.debug("%s: %s still failing: %s", self._source, what, text)
            return
        self.failing.add(what)
        self._log.error(
            "%s: %s failing: %s (will keep trying; repeats are logged at DEBUG)",
            self._source,
            what,
            text,
            exc_info=exc_info,
        )

    def recovered(self, *whats: str, detail: str = "") -> bool:
        """INFO for each of `whats` that was failing (with `detail`); True if one was."""
        was = False
        for what in whats:
            if what in self.failing:
                self.failing.discard(what)
                self._log.info("%s: %s recovered%s", self._source, what, detail)
                was = True
        return was

    def connected(self, what: str, detail: str, *, first: bool) -> None:
        """A connection made: INFO when it ends a failure or is a reconnect, else DEBUG."""
        if not self.recovered(what, detail=f": {detail}"):
            self._log.log(logging.DEBUG if first else logging.INFO, "%s: %s", self._source, detail)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
