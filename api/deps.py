"""Dependencies of the routes, as `Annotated` aliases: a handler declares `conn: Conn`.

Everything comes from `app.state`, set by `api.app.create_app` and its lifespan: the config,
the connection pool, the KPI engine and the clock (a function, so tests can fix "now").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

import psycopg
from fastapi import Depends, Query, Request

from config import ShopfloorConfig
from storage.engine import KpiEngine


def get_cfg(request: Request) -> ShopfloorConfig:
    return request.app.state.cfg


def get_now(request: Request) -> dt.datetime:
    clock: Callable[[], dt.datetime] = request.app.state.clock
    return clock().astimezone(dt.UTC)


def get_engine(request: Request) -> KpiEngine:
    return request.app.state.engine


async def get_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """One pooled connection per request, returned to the pool when the response is built."""
    async with request.app.state.pool.connection() as conn:
        yield conn


Cfg = Annotated[ShopfloorConfig, Depends(get_cfg)]
Now = Annotated[dt.datetime, Depends(get_now)]
Engine = Annotated[KpiEngine, Depends(get_engine)]
Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]


_TIME_HELP = (
    "ISO 8601 with offset, e.g. 2026-03-02T06:00:00Z or 2026-03-02T07:00:00+01:00; "
    "a time without offset is refused. Default: the line's current shift so far"
)


@dataclass(frozen=True, slots=True)
class WindowQuery:
    """`start` and `end` as given; `api.windows.resolve_window` checks and defaults them."""

    start: str | None
    end: str | None


def get_window_query(
    start: Annotated[
        str | None,
        Query(
            description=f"window start (inclusive). {_TIME_HELP}", examples=["2026-03-02T05:00:00Z"]
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            description="window end (exclusive), same format; default: now",
            examples=["2026-03-02T13:00:00Z"],
        ),
    ] = None,
) -> WindowQuery:
    return WindowQuery(start, end)


WindowParams = Annotated[WindowQuery, Depends(get_window_query)]
