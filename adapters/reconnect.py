"""The one reconnect policy of every adapter: how long to wait, and what to log.

`Backoff`: the wait after a failure doubles from a first delay up to a cap, and starts over after
a success. `FailureLog`: what fails (a source's connection or session, one unit behind a gateway)
is logged at WARNING the first time, with the reason, at DEBUG while it keeps failing (every
retry), at INFO when it recovers, through the adapter's own logger: a PLC that restarts is two
lines at the default verbosity, one when it goes and one when it is back, however long it is away.
An adapter names the source's own outage by one `what` (a server stop is one line, not one per
tag or request), and keeps the library's own messages about it below (collector/logs.py).
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
    """WARNING when `what` first fails, DEBUG while it keeps failing, INFO when it recovers.

    An error nobody foresaw (`exc_info=True`: a bug, not the plant's trouble) is an ERROR with its
    traceback instead, still once."""

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
        self._log.log(
            logging.ERROR if exc_info else logging.WARNING,
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

    def connected(self, what: str, detail: str) -> None:
        """A connection made: INFO when it ends a failure of `what`, else DEBUG (a first
        connect, or a reconnect the adapter chose, is no news at the default verbosity)."""
        if not self.recovered(what, detail=f": {detail}"):
            self._log.debug("%s: %s", self._source, detail)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
