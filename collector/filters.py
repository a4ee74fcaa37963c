"""Store-on-change for slow measurements: a deadband plus a heartbeat (tags' `deadband`,
`heartbeat_s`). Counts and states are never filtered: config refuses those options there."""

from __future__ import annotations

import datetime as dt

from adapters.base import Reading


class Deadband:
    """Keeps a reading when it moved more than `deadband` from the last kept one, when its
    quality or text changed, or when `heartbeat_s` passed since the last kept one."""

    __slots__ = ("_last", "deadband", "heartbeat")

    def __init__(self, deadband: float, heartbeat_s: float | None) -> None:
        self.deadband = deadband
        self.heartbeat = dt.timedelta(seconds=heartbeat_s) if heartbeat_s else None
        self._last: Reading | None = None

    def keep(self, reading: Reading) -> bool:
        last = self._last
        if (
            last is None
            or reading.quality != last.quality
            or reading.text != last.text
            or (reading.value is None) != (last.value is None)
            or (
                reading.value is not None
                and last.value is not None
                and abs(reading.value - last.value) > self.deadband
            )
            or (self.heartbeat is not None and reading.ts - last.ts >= self.heartbeat)
        ):
            self._last = reading
            return True
        return False
