"""Protocol front ends: each serves one config source from the shared model's events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from simulators.model import Event

TimedEvent = tuple[Event, dt.datetime]


class FrontEnd(Protocol):
    """What the runner needs of a front end: start, take events in order, stop."""

    name: str

    def prime(self, events: Sequence[TimedEvent]) -> None:
        """Take the model's second-0 events before listening, so no client reads a non-truth."""

    async def start(self) -> None: ...

    async def publish(self, events: Sequence[TimedEvent]) -> None: ...

    async def stop(self) -> None: ...

    def describe(self) -> str: ...
