"""Raw readings -> rows of the plant's tags: mapping by (source, address), filters, heartbeat.

Several tags may share a (source, address) (one register that is a machine's state and another
machine's measurement, one counter shared by two machines): each of them gets every reading.

A reading whose address matches no configured tag is counted and logged once per address, never
stored under a guessed tag. A reading that cannot be stored as it is goes back as `Rejected`,
with its reason, for rejected_readings (docs/collector.md, Hostile input): a time implausibly
far before the collector's clock (a PLC clock reset to 1970 would make the rollups rebuild
decades of minutes) or after it (it would stand "in the future" of every KPI window), or text
PostgreSQL cannot store. The check runs before the heartbeat sees a state, so a refused value
is never re-recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from adapters.base import Reading
from collector.filters import Deadband
from collector.heartbeat import StateHeartbeat
from collector.rows import Rejected, Row, render
from config import ShopfloorConfig
from config.tags import SignalKind
from storage.writer import text_problem

log = logging.getLogger(__name__)


class Routed(NamedTuple):
    rows: list[Row]
    rejected: list[Rejected]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class Route:
    """A tag whose readings need more than a key: held by the heartbeat, or deadband-filtered."""

    key: str
    held: bool  # state / stop reason: re-recorded by the heartbeat
    deadband: Deadband | None


# What a reading address maps to: one tag (its key, or a Route), or every tag that shares it.
Target = str | Route | tuple[str | Route, ...]


class TagRouter:
    def __init__(
        self,
        cfg: ShopfloorConfig,
        heartbeat: StateHeartbeat,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.heartbeat = heartbeat
        settings = cfg.settings.collector
        self.max_age = dt.timedelta(days=settings.max_reading_age_days)
        self.max_lead = dt.timedelta(seconds=settings.max_reading_lead_s)
        self._clock = clock
        # source -> address -> the tag key (most tags: just map and store), a Route, or a
        # tuple of them when several tags share the address (fan-out: each tag gets the
        # reading). One dict per source, so a reading costs one lookup by address.
        self.routes: dict[str, dict[str, Target]] = {}
        for source in cfg.sources:
            by_address = self.routes.setdefault(source.name, {})
            for tag in source.tags:
                held = tag.signal in (SignalKind.STATE, SignalKind.STOP_REASON)
                deadband = (
                    Deadband(tag.deadband, tag.heartbeat_s) if tag.deadband is not None else None
                )
                one = Route(tag.key, held, deadband) if held or deadband is not None else tag.key
                known = by_address.get(tag.reading_address)
                if known is None:
                    by_address[tag.reading_address] = one
                else:
                    by_address[tag.reading_address] = (
                        (*known, one) if isinstance(known, tuple) else (known, one)
                    )
        self.unmapped: Counter[str] = Counter()  # per source
        self.filtered: Counter[str] = Counter()  # per source: dropped by a deadband
        self.rejected: Counter[str] = Counter()  # per source: kept in rejected_readings
        self._warned: set[tuple[str, str]] = set()
        self._refusing: set[str] = set()  # sources whose last checked reading was refused

    def route(self, readings: Sequence[Reading]) -> Routed:
        """Rows of the mapped readings, in order, and the readings refused. The hot path of the
        collector: one dict lookup, two time comparisons and one tuple per plain reading (an
        adapter's batch comes from one source)."""
        out: list[Row] = []
        rejected: list[Rejected] = []
        append = out.append
        routes = self.routes
        now = self._clock()
        earliest, latest = now - self.max_age, now + self.max_lead
        last_source: str | None = None
        by_address: dict[str, Target] = {}
        for r in readings:
            source, address, ts, value, quality, text = r
            if source != last_source:
                by_address = routes.get(source, {})
                last_source = source
            target = by_address.get(address)
            if target.__class__ is str and text is None and earliest <= ts <= latest:
                append((ts, target, value, int(quality), text))
            elif target is None:
                self._unmapped(r)
            else:
                problem = self._problem(r, now, earliest, latest)
                for route in target if isinstance(target, tuple) else (target,):
                    key = route if isinstance(route, str) else route.key
                    if problem is not None:
                        rejected.append(self._reject(r, key, problem))
                        continue
                    row = (
                        (ts, route, value, int(quality), text)
                        if isinstance(route, str)
                        else self._special(route, r)
                    )
                    if row is not None:
                        append(row)
        if self._refusing and out:
            self._recovered(readings, rejected)
        return Routed(out, rejected)

    def _recovered(self, readings: Sequence[Reading], rejected: list[Rejected]) -> None:
        """Sources that were refusing and whose readings of this call were all storable."""
        back = {r.source for r in readings} & self._refusing
        back -= {r.source for r in rejected}
        for source in sorted(back):
            self._refusing.discard(source)
            log.info("%s: readings are storable again", source)

    def rows(self, readings: Sequence[Reading]) -> list[Row]:
        """`route` without the refused readings (tests and benchmarks of the mapping)."""
        return self.route(readings).rows

    def _problem(
        self, r: Reading, now: dt.datetime, earliest: dt.datetime, latest: dt.datetime
    ) -> str | None:
        if r.ts < earliest:
            return (
                f"reading time {r.ts.isoformat()} is {_ago(now - r.ts)} before the collector's "
                f"clock (max_reading_age_days: {self.max_age / dt.timedelta(days=1):g})"
            )
        if r.ts > latest:
            return (
                f"reading time {r.ts.isoformat()} is {_ago(r.ts - now)} ahead of the collector's "
                f"clock (max_reading_lead_s: {self.max_lead.total_seconds():g})"
            )
        return None if r.text is None else text_problem(r.text)

    def _reject(self, r: Reading, key: str, problem: str) -> Rejected:
        self.rejected[r.source] += 1
        if r.source not in self._refusing:
            self._refusing.add(r.source)
            log.warning(
                "%s: reading of %s refused, kept in rejected_readings (counted, logged again "
                "when readings are storable again): %s",
                r.source,
                key,
                problem,
            )
        row = (r.ts.isoformat(), key, r.value, int(r.quality), r.text)
        return Rejected(r.ts, key, r.source, r.address, render(row), problem)

    def _special(self, route: Route, r: Reading) -> Row | None:
        if route.deadband is not None and not route.deadband.keep(r):
            self.filtered[r.source] += 1
            return None
        row = (r.ts, route.key, r.value, int(r.quality), r.text)
        if route.held:
            self.heartbeat.seen(r.source, row)
        return row

    def _unmapped(self, r: Reading) -> None:
        self.unmapped[r.source] += 1
        if (r.source, r.address) not in self._warned:
            self._warned.add((r.source, r.address))
            log.warning(
                "reading of %s address %r matches no configured tag: counted, not stored",
                r.source,
                r.address,
            )


def _ago(span: dt.timedelta) -> str:
    """A span as a person reads it: '55.2 years', '3.0 days', '42 s'."""
    seconds = span.total_seconds()
    if seconds >= 365 * 86400:
        return f"{seconds / (365.25 * 86400):.1f} years"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds:.0f} s"
