"""Re-record state and stop-reason tags while their source is connected (KPI.md §1): OPC UA and
MQTT report changes only, so a machine running steadily would otherwise look like a data gap.

A re-recorded row is stamped in the *source's* time base and written only once the collector
has held the value that long (+ `LAG_S`), so neither a PLC clock that is off from ours nor a
change still in flight can place a stale value after a newer one (docs/collector.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

from collector.rows import Row

LAG_S = 2.0  # delivery latency we wait out before vouching for an unchanged value


@dataclasses.dataclass(slots=True)
class _Held:
    row: Row
    received: float  # monotonic time the row's value was (last) vouched for


class StateHeartbeat:
    def __init__(self, heartbeat_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.step = dt.timedelta(seconds=heartbeat_s)
        self.heartbeat_s = heartbeat_s
        self._clock = clock
        self._held: dict[str, dict[str, _Held]] = {}  # source -> key -> last row
        self.late = 0  # changes stamped before a value we had re-recorded (see `seen`)

    def seen(self, source: str, row: Row) -> None:
        """A state/reason row of `source` is being stored."""
        held = self._held.setdefault(source, {})
        prev = held.get(row[1])
        if prev is not None and row[0] < prev.row[0]:
            if row[2:] != prev.row[2:]:
                # A change stamped before a value we already vouched for: its delivery took
                # longer than LAG_S. Stored as it is; counted so /metrics shows it.
                self.late += 1
            return
        held[row[1]] = _Held(row, self._clock())

    def forget(self, source: str) -> None:
        self._held.pop(source, None)

    def due(self, source: str) -> list[Row]:
        """Rows to re-record now for a connected source."""
        now = self._clock()
        out: list[Row] = []
        for h in self._held.get(source, {}).values():
            while now - h.received >= self.heartbeat_s + LAG_S:
                t, key, value, quality, text = h.row
                h.row = (t + self.step, key, value, quality, text)
                h.received += self.heartbeat_s
                out.append(h.row)
        return out
