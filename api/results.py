"""The result cache (api.cache) as the routes use it (docs/api.md, "Cached answers"): a route
checks its input, then `return await results.answer(compute, window=w, machines=ids)`, and
the answer comes from the cache, from another request's computation of the same key, or from
`compute` on a pooled connection (so an answer from the cache takes no connection).

Key: the route, its path parameters, its query parameters other than start/end (so `source=raw`
and the default `source=auto` are separate answers, as are buckets and the like; in any order, and
one that says its default is left out), and the resolved window, whose end is left out when it is
now (a window "so far" is one entry for its ttl).

Validity: **past** when the route names the machines whose KPI readings make the answer and the
window ended at least `settle_margin` before now; **live** otherwise. The margin: a reading stored
more than LATE_AFTER_S after its time is marked late (storage.writer); a reading at t can change
the classification back to t - rollup_margin (storage.rollups); plus CLOCK_SKEW between the API's
clock and the database's. An older window changes only by readings that move late_seq.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Hashable, Sequence

import psycopg
from fastapi import Request, Response
from pydantic import BaseModel

from api.cache import LIVE, ResultCache, Validity
from api.models import Window
from api.query import route_query
from config.settings import KpiSettings
from storage.rollups import rollup_margin
from storage.writer import LATE_AFTER_S

CLOCK_SKEW = dt.timedelta(seconds=60)
_WINDOW_PARAMS = frozenset({"start", "end"})

ComputeModel = Callable[[psycopg.AsyncConnection], Awaitable[BaseModel]]


def settle_margin(kpi: KpiSettings) -> dt.timedelta:
    """How long after its end a window's answer may still change without a late mark."""
    return dt.timedelta(seconds=LATE_AFTER_S) + rollup_margin(kpi) + CLOCK_SKEW


def render(model: BaseModel) -> bytes:
    """The JSON body of a response model (field aliases, instants in UTC with Z)."""
    return model.model_dump_json(by_alias=True).encode()


class Results:
    """The cache bound to one request (api.deps.Results)."""

    def __init__(self, request: Request, now: dt.datetime) -> None:
        self.request = request
        self.now = now

    def key(self, window: Window | None) -> Hashable:
        route = self.request.scope.get("route")
        defaults = route_query(self.request)
        # By name (a stable sort keeps the order of a repeated one's values), without those
        # that say the default: `?source=auto&bucket=1h` is `?bucket=1h`.
        query = tuple(
            sorted(
                (
                    (k, v)
                    for k, v in self.request.query_params.multi_items()
                    if k not in _WINDOW_PARAMS and defaults.get(k) != v
                ),
                key=lambda item: item[0],
            )
        )
        win = None
        if window is not None:
            end = None if window.end == self.now else window.end
            win = (window.start, end, window.shift, window.defaulted)
        return (getattr(route, "path", None), tuple(self.request.path_params.items()), query, win)

    def validity(self, window: Window | None, machines: Sequence[str] | None) -> Validity:
        if window is None or machines is None:
            return LIVE
        settle: dt.timedelta = self.request.app.state.settle_margin
        return Validity(tuple(machines)) if window.end <= self.now - settle else LIVE

    async def answer(
        self,
        compute: ComputeModel,
        *,
        window: Window | None = None,
        machines: Sequence[str] | None = None,
    ) -> Response:
        """A 200 JSON response with the answer; errors raised by `compute` pass through."""
        state = self.request.app.state
        cache: ResultCache = state.cache
        pool = state.pool

        async def run() -> bytes:
            async with pool.connection() as conn:
                return render(await compute(conn))

        body = await cache.get(self.key(window), self.validity(window, machines), run, pool)
        return Response(body, media_type="application/json")
