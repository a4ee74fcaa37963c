"""Tags: the list, and one tag's values per time bucket or raw, paged with a cursor."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Query, Response

from api.deps import Conn, Engine, MachineId, Now, Results, TagName, WindowParams
from api.errors import BadParameter, NotFound, did_you_mean
from api.models import RawReading, TagBucket, TagList, TagOut, TagRaw, TagSeries, Window
from api.windows import (
    MAX_KPI_WINDOW,
    MAX_TAG_BUCKETS,
    check_bucket_count,
    resolve_window,
    tag_bucket,
)
from config.plant import Calendar
from kpi.limits import time_problem
from storage import tag_series
from storage.engine.plant import Plant
from storage.tag_series import TagRow

MAX_RAW_WINDOW = dt.timedelta(days=7)
MAX_RAW_LIMIT = 10_000

router = APIRouter(tags=["tags"])


@router.get("/tags", response_model=TagList, summary="Every tag, by machine and name")
async def list_tags(
    conn: Conn,
    active: Annotated[bool, Query(description="only tags in the current config")] = False,
) -> TagList:
    tags = [TagOut.model_validate(t) for t in await tag_series.list_tags(conn, active_only=active)]
    return TagList(data=tags, count=len(tags))


def encode_cursor(tag_id: int, after: dt.datetime) -> str:
    raw = json.dumps({"tag": tag_id, "after": after.astimezone(dt.UTC).isoformat()})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_NOT_OURS = "not a cursor returned by this API"


def decode_cursor(token: str) -> tuple[int, dt.datetime]:
    """(tag id, time after which the next page starts); 422 for a token this API did not
    issue. The tag is checked against the route's by `check_cursor`, once the tag is known."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after = dt.datetime.fromisoformat(data["after"])
        tag = data["tag"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise BadParameter(["query", "cursor"], _NOT_OURS) from None
    if after.utcoffset() is None or type(tag) is not int or time_problem(after) is not None:
        raise BadParameter(["query", "cursor"], _NOT_OURS)
    return tag, after.astimezone(dt.UTC)


def check_cursor(cursor: tuple[int, dt.datetime], tag_id: int) -> dt.datetime:
    if cursor[0] != tag_id:
        raise BadParameter(["query", "cursor"], "this cursor belongs to another tag")
    return cursor[1]


async def _find(conn: psycopg.AsyncConnection, machine: str, tag: str) -> TagRow:
    """The tag; else a 404 with the `machine/tag` it is likely meant to be (another case, a
    typo in either part), looked up only then."""
    row = await tag_series.find_tag(conn, machine=machine, name=tag)
    if row is None:
        known = [f"{t.machine}/{t.name}" for t in await tag_series.list_tags(conn)]
        hint = did_you_mean(f"{machine}/{tag}", known)
        raise NotFound(f"no tag {tag!r} on machine {machine!r}{hint}", ["path", "tag"])
    return row


def _about(row: TagRow, w: Window) -> dict[str, Any]:
    """The fields TagRaw and TagSeries share: the tag and the window."""
    return {"machine": row.machine, "tag": row.name, "unit": row.unit, "window": w}


def _calendar(plant: Plant, machine: str) -> Calendar | None:
    """A tag may belong to a machine no longer configured: then buckets are aligned in UTC."""
    found = plant.cfg.machines().get(machine)
    return plant.calendar(found[0]) if found else None


@router.get(
    "/tags/{machine}/{tag}/series",
    response_model=TagSeries | TagRaw,
    summary="A tag's values per time bucket, or raw readings page by page",
    description="Bucketed (default): one point per bucket holding readings, aggregated with "
    "`agg`. Raw (`raw=true`): readings oldest first, `limit` per page; pass `next_cursor` as "
    f"`cursor` for the next page. Raw windows are limited to {MAX_RAW_WINDOW.days} days.",
)
async def tag_series_route(
    machine: MachineId,
    tag: TagName,
    window: WindowParams,
    engine: Engine,
    now: Now,
    results: Results,
    bucket: Annotated[
        str, Query(description="bucket size: Ns, Nm, Nh or Nd (max 31d)", examples=["1m"])
    ] = "1m",
    agg: Annotated[
        Literal["avg", "min", "max", "last"], Query(description="aggregate per bucket")
    ] = "avg",
    raw: Annotated[bool, Query(description="raw readings instead of buckets")] = False,
    limit: Annotated[
        int, Query(ge=1, le=MAX_RAW_LIMIT, description="raw mode: readings per page")
    ] = 1000,
    cursor: Annotated[
        str | None, Query(max_length=512, description="raw mode: next_cursor of the last page")
    ] = None,
) -> Response:
    """Measurements are not marked when late (storage.writer), so answers are live only."""
    cal = _calendar(engine.plant, machine)
    if raw:
        w = resolve_window(window, cal, now, max_length=MAX_RAW_WINDOW, limit_for="raw=true")
        given = decode_cursor(cursor) if cursor is not None else None

        async def raw_page(conn: psycopg.AsyncConnection) -> TagRaw:
            row = await _find(conn, machine, tag)
            after = check_cursor(given, row.id) if given is not None else None
            rows = await tag_series.raw_page(
                conn, tag_id=row.id, start=w.start, end=w.end, after=after, limit=limit + 1
            )
            more = len(rows) > limit
            rows = rows[:limit]
            return TagRaw(
                **_about(row, w),
                limit=limit,
                readings=[RawReading.model_validate(r) for r in rows],
                next_cursor=encode_cursor(row.id, rows[-1].time) if more else None,
            )

        return await results.answer(raw_page, window=w)
    width = tag_bucket(bucket)
    w = resolve_window(window, cal, now, max_length=MAX_KPI_WINDOW)
    check_bucket_count((w.end - w.start) / width, bucket, MAX_TAG_BUCKETS)

    async def bucketed(conn: psycopg.AsyncConnection) -> TagSeries:
        row = await _find(conn, machine, tag)
        points = await tag_series.bucketed(
            conn,
            tag_id=row.id,
            start=w.start,
            end=w.end,
            width=width,
            agg=agg,
            timezone=cal.timezone if cal else "UTC",
        )
        return TagSeries(
            **_about(row, w),
            bucket=bucket,
            agg=agg,
            points=[TagBucket.model_validate(p) for p in points],
        )

    return await results.answer(bucketed, window=w)
