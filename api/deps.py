"""Dependencies of the routes, as `Annotated` aliases: a handler declares `conn: Conn`.

Everything comes from `app.state`, set by `api.app.create_app` and its lifespan: the config,
the connection pool, the KPI engine, the result cache and the clock (a function, so tests can
fix "now").

Every dependency is `async def`, also where nothing is awaited: FastAPI runs a plain `def`
dependency in a worker thread (docs/benchmarks.md).

Path ids (`LineId`, `MachineId`, `TagName`) are checked here against the config's id rule
(config.plant.ID_PATTERN) before anything looks them up: what cannot be an id is a 422 that
says so, on every route alike, without a database round trip. Query parameters a route does not
declare are a 422 too (`refuse_unknown_query`, added to every route by api.app).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import WithJsonSchema

from api.errors import BadParameter, UnknownParameters, shown
from api.query import route_query
from api.results import Results as ResultsOf
from api.windows import MAX_RAW_SOURCE_WINDOW, SPAN, WindowQuery
from config import ShopfloorConfig
from config.plant import ID_PATTERN
from storage.engine import Kind, KpiEngine

ID_MAX = 63  # ID_PATTERN: a letter or digit, then up to 62 more
_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))  # fullmatch: no `$` newline
ID_RULE = (
    "ids are 1-63 characters A-Z, a-z, 0-9, _ and -, starting with a letter or digit "
    "(case-sensitive)"
)


async def get_cfg(request: Request) -> ShopfloorConfig:
    return request.app.state.cfg


async def get_now(request: Request) -> dt.datetime:
    clock: Callable[[], dt.datetime] = request.app.state.clock
    return clock().astimezone(dt.UTC)


Source = Literal["auto", "raw"]


async def get_engine(request: Request) -> KpiEngine:
    """The engine that reads rollups where they are exact (`source=auto`)."""
    return request.app.state.engines["auto"]


async def get_source_engine(
    request: Request,
    source: Annotated[
        Source,
        Query(
            description="auto: whole minutes from rollups where they are exact, the edges from "
            "raw readings; raw: the whole window from raw readings alone, to check the rollups "
            f"against (slower; windows up to {MAX_RAW_SOURCE_WINDOW.days} days)"
        ),
    ] = "auto",
) -> KpiEngine:
    return request.app.state.engines[source]


async def get_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """One pooled connection per request, returned to the pool when the response is built."""
    async with request.app.state.pool.connection() as conn:
        yield conn


Cfg = Annotated[ShopfloorConfig, Depends(get_cfg)]
Now = Annotated[dt.datetime, Depends(get_now)]
Engine = Annotated[KpiEngine, Depends(get_engine)]
SourceEngine = Annotated[KpiEngine, Depends(get_source_engine)]  # ...and the `source` parameter
Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]


async def get_results(request: Request, now: Now) -> ResultsOf:
    return ResultsOf(request, now)


Results = Annotated[ResultsOf, Depends(get_results)]


# --- query parameters ---------------------------------------------------------------------------


async def refuse_unknown_query(request: Request) -> None:
    """422 naming every query parameter the route does not declare, and those it does: a typo
    (`strat=`) must not silently answer for the default window. Dependencies given to
    `include_router` are not in the route's dependant: none of them may declare a query
    parameter (tests/api/test_params.py checks every route against its OpenAPI document)."""
    if not request.query_params:
        return
    accepted = list(route_query(request))
    unknown = [name for name in request.query_params if name not in accepted]
    if unknown:
        raise UnknownParameters(unknown, accepted)


# --- path ids -----------------------------------------------------------------------------------


def check_id(kind: str, value: str) -> str:
    """`value` if it can be an id; else a 422 naming the path parameter `kind`."""
    if _ID.fullmatch(value) is None:
        raise BadParameter(["path", kind], f"{shown(value)} is not an id: {ID_RULE}", "not_an_id")
    return value


def _id_path(what: str, example: str) -> Any:
    return Path(
        description=f"{what} ({ID_RULE})",
        examples=[example],
        json_schema_extra={"pattern": ID_PATTERN, "maxLength": ID_MAX},
    )


async def _line_id(line: Annotated[str, _id_path("line id", "line1")]) -> str:
    return check_id("line", line)


async def _machine_id(machine: Annotated[str, _id_path("machine id", "filler")]) -> str:
    return check_id("machine", machine)


async def _tag_name(tag: Annotated[str, _id_path("tag name", "temperature")]) -> str:
    return check_id("tag", tag)


LineId = Annotated[str, Depends(_line_id)]
MachineId = Annotated[str, Depends(_machine_id)]
TagName = Annotated[str, Depends(_tag_name)]


async def _entity(request: Request) -> tuple[Kind, str]:
    kind: Kind = "line" if "line" in request.path_params else "machine"
    return kind, request.path_params[kind]


# The line or machine of a route mounted by `per_kind`, as (kind, id).
Entity = Annotated[tuple[Kind, str], Depends(_entity)]


def per_kind(
    router: APIRouter,
    path: str,
    endpoint: Callable[..., Any],
    summaries: tuple[str, str],
    **kw: Any,
) -> None:
    """One endpoint (taking `Entity`) at /lines/{line}<path> and /machines/{machine}<path>; the
    id is checked and documented as everywhere (the route's dependency runs before `Entity`)."""
    name = endpoint.__name__.strip("_")
    for (kind, check), summary in zip(
        (("line", _line_id), ("machine", _machine_id)), summaries, strict=True
    ):
        router.add_api_route(
            f"/{kind}s/{{{kind}}}{path}",
            endpoint,
            name=f"{kind}_{name}",
            summary=summary,
            dependencies=[Depends(check)],
            **kw,
        )


# --- windows ------------------------------------------------------------------------------------

_TIME_HELP = (
    "ISO 8601 with offset, e.g. 2026-03-02T06:00:00Z or 2026-03-02T07:00:00+01:00 (send '+' "
    f"as %2B); a time without offset is refused, and so is one outside {SPAN}"
)


def _time_schema(example: str) -> WithJsonSchema:
    """Declared as date-time; parsed by api.windows for messages that say what is wrong."""
    return WithJsonSchema({"type": "string", "format": "date-time", "examples": [example]})


async def get_window_query(
    start: Annotated[
        str | None,
        Query(description=f"window start (inclusive). {_TIME_HELP}. Default: the current shift"),
        _time_schema("2026-03-02T05:00:00Z"),
    ] = None,
    end: Annotated[
        str | None,
        Query(description="window end (exclusive), same format; default: now"),
        _time_schema("2026-03-02T13:00:00Z"),
    ] = None,
) -> WindowQuery:
    return WindowQuery(start, end)


WindowParams = Annotated[WindowQuery, Depends(get_window_query)]
