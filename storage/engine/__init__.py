"""The KPI engine over the database: what the API asks for (machine and line KPIs, series,
timelines, downtime, current states; the calls are listed in docs/engine.md), computed by the
pure core.

Windows are half-open [start, end) with aware datetimes; the part after `now` is left out (the
window's end is capped at now). Whole minutes come from rollups where they are exact, the rest
from raw samples (storage.engine.sums); decisions in docs/engine.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, TypeVar

import psycopg

from config import ShopfloorConfig
from config.plant import Line
from kpi import (
    Bucket,
    Interval,
    Kpis,
    Sums,
    TimeClass,
    bucket_spans,
    calendar_time,
    clip_timeline,
    line_kpis,
    machine_kpis,
    parse_bucket,
)
from storage import samples
from storage.engine.current import CurrentState, current_states
from storage.engine.downtime import DowntimeRow, downtime_rows, rollup_downtime
from storage.engine.errors import BadBucket, BadKind, BadRequest, BadWindow, UnknownEntity
from storage.engine.plant import Plant
from storage.engine.sums import bucket_results, counter_names, empty_sums, raw_timelines
from storage.engine.windows import check_window, resolve_now

Kind = Literal["line", "machine"]
T = TypeVar("T")

__all__ = [
    "BadBucket",
    "BadKind",
    "BadRequest",
    "BadWindow",
    "CurrentState",
    "DowntimeRow",
    "KpiEngine",
    "LineResult",
    "UnknownEntity",
]


@dataclass(frozen=True)
class LineResult:
    kpis: Kpis  # the line rule (KPI.md §4, kpi.line_kpis)
    machines: dict[str, Kpis]  # each machine's own KPIs, in line order


class KpiEngine:
    """Stateless apart from the configuration; safe to share between requests."""

    def __init__(self, cfg: ShopfloorConfig, *, use_rollups: bool = True) -> None:
        self.plant = Plant(cfg)
        self.use_rollups = use_rollups

    # -- helpers -------------------------------------------------------------------------
    def _scope(
        self, kind: str, ident: str, start: dt.datetime, end: dt.datetime, now: dt.datetime | None
    ) -> tuple[Line, list[str], dt.datetime, dt.datetime, dt.datetime]:
        """(line, member machines, start, end capped at now, now), checked; end may then be
        <= start (empty)."""
        line, ids = self.plant.members(kind, ident)
        s, e = check_window(start, end)
        n = resolve_now(now)
        return line, ids, s, min(e, n), n

    async def _results(
        self,
        conn: psycopg.AsyncConnection,
        line: Line,
        machine_ids: list[str],
        buckets: list[Bucket],
        now: dt.datetime,
        each: Callable[[dict[str, Sums]], T],
        *,
        counts_only: frozenset[str] = frozenset(),
    ) -> list[T]:
        return await bucket_results(
            conn,
            self.plant,
            machine_ids,
            buckets,
            self.plant.calendar(line),
            now,
            each,
            use_rollups=self.use_rollups,
            counts_only=counts_only,
        )

    async def _window_sums(
        self,
        conn: psycopg.AsyncConnection,
        kind: Kind,
        ident: str,
        start: dt.datetime,
        end: dt.datetime,
        now: dt.datetime | None,
    ) -> tuple[Line, list[str], dict[str, Sums]]:
        """The line and each member machine's sums over the window."""
        line, ids, s, e, n = self._scope(kind, ident, start, end, now)
        if s >= e:
            tags = await samples.machine_tags(conn)
            missing = self.plant.calendar(line) is None
            return line, ids, {m: empty_sums(counter_names(tags.get(m)), missing) for m in ids}
        found = await self._results(conn, line, ids, [Bucket(s, e)], n, dict)
        return line, ids, found[0]

    # -- API -----------------------------------------------------------------------------
    async def machine(
        self,
        conn: psycopg.AsyncConnection,
        machine_id: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        now: dt.datetime | None = None,
    ) -> Kpis:
        _, _, sums = await self._window_sums(conn, "machine", machine_id, start, end, now)
        return machine_kpis(sums[machine_id])

    async def line(
        self,
        conn: psycopg.AsyncConnection,
        line_id: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        now: dt.datetime | None = None,
    ) -> LineResult:
        line, ids, sums = await self._window_sums(conn, "line", line_id, start, end, now)
        return LineResult(line_kpis(line, sums), {m: machine_kpis(sums[m]) for m in ids})

    async def series(
        self,
        conn: psycopg.AsyncConnection,
        kind: Kind,
        ident: str,
        start: dt.datetime,
        end: dt.datetime,
        bucket: str,
        *,
        now: dt.datetime | None = None,
    ) -> list[tuple[Bucket, Kpis]]:
        """KPIs per bucket; buckets tile [start, min(end, now)), the first/last may be partial."""
        try:
            parse_bucket(bucket)
        except ValueError as exc:
            raise BadBucket(str(exc)) from exc
        line, ids, s, e, n = self._scope(kind, ident, start, end, now)
        if s >= e:
            return []
        buckets = bucket_spans(s, e, bucket, self.plant.calendar(line))
        if kind == "machine":
            kpis = await self._results(
                conn, line, ids, buckets, n, lambda sums: machine_kpis(sums[ident])
            )
        else:
            # line_kpis reads the constraint's times and only counts and flags of the others
            others = frozenset(m for m in ids if m != line.constraint)
            kpis = await self._results(
                conn, line, ids, buckets, n, partial(line_kpis, line), counts_only=others
            )
        return list(zip(buckets, kpis, strict=True))

    async def timeline(
        self,
        conn: psycopg.AsyncConnection,
        machine_id: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        now: dt.datetime | None = None,
    ) -> list[Interval]:
        """The classified intervals inside [start, min(end, now)), cut at the window's edges;
        `short_stop` was decided on the whole interval."""
        _, _, s, e, n = self._scope("machine", machine_id, start, end, now)
        if s >= e:
            return []
        return clip_timeline((await self._raw_intervals(conn, [machine_id], s, e, n))[0], s, e)

    async def _raw_intervals(
        self,
        conn: psycopg.AsyncConnection,
        machine_ids: list[str],
        s: dt.datetime,
        e: dt.datetime,
        n: dt.datetime,
    ) -> list[list[Interval]]:
        """Each machine's raw timeline around [s, e), all read in one query."""
        tags = await samples.machine_tags(conn)
        known = [m for m in machine_ids if m in tags]
        found = await raw_timelines(
            conn, self.plant, [(tags[m], s, e) for m in known], n, with_counts=False
        )
        by_machine = {m: intervals for m, (intervals, _) in zip(known, found, strict=True)}
        return [by_machine.get(m, [Interval(s, e, TimeClass.UNKNOWN)]) for m in machine_ids]

    async def downtime(
        self,
        conn: psycopg.AsyncConnection,
        kind: Kind,
        ident: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        now: dt.datetime | None = None,
    ) -> list[DowntimeRow]:
        """Stop time by reason over the machine (or every machine of the line), productive
        calendar time only, longest first (storage.engine.downtime): whole minutes from
        rollups where they are exact, unless `use_rollups=False`."""
        line, ids, s, e, n = self._scope(kind, ident, start, end, now)
        if s >= e:
            return []
        calendar = self.plant.calendar(line)
        productive = calendar_time(calendar, s, e).planned if calendar else [(s, e)]
        if self.use_rollups:
            return await rollup_downtime(conn, self.plant, ids, s, e, n, productive)
        timelines = [clip_timeline(t, s, e) for t in await self._raw_intervals(conn, ids, s, e, n)]
        return downtime_rows(timelines, productive, self.plant.reason_table)

    async def current_states(
        self, conn: psycopg.AsyncConnection, *, now: dt.datetime | None = None
    ) -> dict[str, CurrentState]:
        n = resolve_now(now)
        tags = await samples.machine_tags(conn)
        return await current_states(conn, self.plant, tags, self.plant.machine_ids(), n)
