"""Every error has the one shape; bad input is a 4xx naming what is wrong, never a 500."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from api.app import create_app
from tests.api.plant import plant
from tests.services import free_port

W = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T14:00:00Z"}
TEMP = "/api/v1/tags/ma/temp/series"


def _cursor(tag: object, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"tag": tag, "after": after}).encode()).decode()


def invalid(path: str, params: dict[str, str], param: str, words: str) -> tuple[object, ...]:
    """A GET answered 422 invalid_parameter whose first problem is the query parameter `param`."""
    return ("GET", path, params, 422, "invalid_parameter", ["query", param], words)


# (method, path, params, status, code, loc of the first problem or None, words in the message)
CASES = [
    ("GET", "/api/v1/lines/nope", {}, 404, "not_found", ["path", "line"], "no line 'nope'"),
    ("GET", "/api/v1/lines/nope/kpis", W, 404, "not_found", ["path", "line"], "'nope'"),
    ("GET", "/api/v1/lines/nope/kpis/series", W, 404, "not_found", ["path", "line"], "'nope'"),
    ("GET", "/api/v1/lines/nope/downtime", W, 404, "not_found", ["path", "line"], "'nope'"),
    ("GET", "/api/v1/machines/nope", {}, 404, "not_found", ["path", "machine"], "no machine"),
    ("GET", "/api/v1/machines/nope/kpis", W, 404, "not_found", ["path", "machine"], "'nope'"),
    ("GET", "/api/v1/machines/nope/timeline", W, 404, "not_found", ["path", "machine"], "nope"),
    ("GET", "/api/v1/machines/nope/downtime", W, 404, "not_found", ["path", "machine"], "nope"),
    ("GET", "/api/v1/machines/nope/kpis/series", W, 404, "not_found", ["path", "machine"], "no"),
    ("GET", "/api/v1/tags/ma/nope/series", W, 404, "not_found", ["path", "tag"], "no tag 'nope'"),
    ("GET", "/api/v1/tags/nope/temp/series", W, 404, "not_found", ["path", "tag"], "'nope'"),
    ("GET", "/api/v1/nothing-here", {}, 404, "not_found", None, "no route"),
    ("GET", "/nothing", {}, 404, "not_found", None, "no route '/nothing'"),
    ("POST", "/api/v1/lines", {}, 405, "method_not_allowed", None, "POST"),
    ("DELETE", "/api/v1/machines/ma", {}, 405, "method_not_allowed", None, "DELETE"),
    # windows
    invalid(
        "/api/v1/lines/la/kpis",
        {"start": W["end"], "end": W["start"]},
        "end",
        "start must be before end",
    ),
    invalid("/api/v1/lines/la/kpis", {"start": W["start"], "end": W["start"]}, "end", "before"),
    invalid(
        "/api/v1/lines/la/kpis",
        {"start": "2026-03-02T06:00:00", "end": W["end"]},
        "start",
        "no UTC offset",
    ),
    invalid(
        "/api/v1/machines/ma/kpis",
        {"start": W["start"], "end": "2026-03-02 14:00"},
        "end",
        "no UTC offset",
    ),
    invalid("/api/v1/machines/ma/kpis", {"start": "yesterday"}, "start", "not an ISO 8601 time"),
    invalid(
        "/api/v1/machines/ma/kpis", {"start": "2026-03-02T06:00:00+25:00"}, "start", "ISO 8601"
    ),
    invalid("/api/v1/machines/ma/kpis", {"start": "2026-02-30T06:00:00Z"}, "start", "ISO 8601"),
    invalid("/api/v1/machines/ma/kpis", {"start": "", "end": W["end"]}, "start", "ISO 8601"),
    invalid("/api/v1/machines/ma/kpis", {"start": "x" * 5000}, "start", "ISO 8601"),
    invalid("/api/v1/machines/ma/kpis", {"end": W["end"]}, "start", "start is required"),
    invalid(
        "/api/v1/machines/ma/kpis", {"start": "2027-01-01T00:00:00Z"}, "start", "in the future"
    ),
    invalid(
        "/api/v1/lines/la/kpis",
        {"start": "2025-01-01T00:00:00Z", "end": W["end"]},
        "end",
        "window of 425 days 14 h exceeds the limit of 366 days for this route",
    ),
    invalid(
        "/api/v1/machines/ma/kpis/series",
        {"start": "2024-04-03T14:00:00Z", "end": W["end"]},
        "end",
        "end: window of 698 days exceeds the limit of 366 days for this route",
    ),
    invalid(
        "/api/v1/lines/la/kpis",
        {"start": "0001-01-01T00:00:00+01:00", "end": W["end"]},
        "start",
        "outside the span this product handles (1900-01-01 .. 2200-01-01)",
    ),
    invalid(
        "/api/v1/machines/ma/timeline",
        {"start": "2026-01-01T00:00:00Z", "end": W["end"]},
        "end",
        "window of 60 days 14 h exceeds the limit of 31 days for this route",
    ),
    invalid("/api/v1/machines/ma/kpis?start=2026-03-02T07:00:00+01:00", {}, "start", "%2B"),
    # buckets
    invalid("/api/v1/lines/la/kpis/series", {**W, "bucket": "7m"}, "bucket", "bad bucket '7m'"),
    invalid("/api/v1/lines/la/kpis/series", {**W, "bucket": "0h"}, "bucket", "bad bucket"),
    invalid("/api/v1/machines/ma/kpis/series", {**W, "bucket": "week"}, "bucket", "bad bucket"),
    invalid("/api/v1/machines/ma/kpis/series", {**W, "bucket": ""}, "bucket", "bad bucket"),
    invalid(
        "/api/v1/machines/ma/kpis/series",
        {"start": "2025-06-01T00:00:00Z", "end": W["end"], "bucket": "15m"},
        "bucket",
        "buckets",
    ),
    # tags
    invalid(TEMP, {**W, "bucket": "1x"}, "bucket", "1x"),
    invalid(TEMP, {**W, "bucket": "0s"}, "bucket", "0s"),
    invalid(TEMP, {**W, "bucket": "99999999999m"}, "bucket", "bad bucket"),
    invalid(
        TEMP,
        {"start": "2025-06-01T00:00:00Z", "end": W["end"], "bucket": "1s"},
        "bucket",
        "buckets",
    ),
    invalid(TEMP, {**W, "agg": "median"}, "agg", "avg"),
    invalid(TEMP, {**W, "raw": "maybe"}, "raw", "bool"),
    invalid(TEMP, {**W, "raw": "true", "limit": "0"}, "limit", "greater than or equal to 1"),
    invalid(TEMP, {**W, "raw": "true", "limit": "10001"}, "limit", "10000"),
    invalid(TEMP, {**W, "raw": "true", "limit": "ten"}, "limit", "integer"),
    invalid(
        TEMP,
        {"start": "2026-03-01T00:00:00Z", "end": "2026-03-09T00:00:00Z", "raw": "1"},
        "end",
        "end: window of 8 days exceeds the limit of 7 days for raw=true",
    ),
    invalid(TEMP, {**W, "raw": "true", "cursor": "garbage!"}, "cursor", "not a cursor"),
    invalid(
        TEMP,
        {**W, "raw": "true", "cursor": _cursor(99999, "2026-03-02T06:00:00+00:00")},
        "cursor",
        "another tag",
    ),
    invalid(
        TEMP,
        {**W, "raw": "true", "cursor": _cursor("1", "2026-03-02T06:00:00+00:00")},
        "cursor",
        "not a cursor",
    ),
    invalid(
        TEMP,
        {**W, "raw": "true", "cursor": _cursor(1, "2026-03-02T06:00:00")},
        "cursor",
        "not a cursor",
    ),
    invalid(
        TEMP,
        {**W, "raw": "true", "cursor": base64.b64encode(b"[1, 2]").decode()},
        "cursor",
        "not a cursor",
    ),
    invalid(TEMP, {**W, "raw": "true", "cursor": "a" * 600}, "cursor", "512"),
    invalid("/api/v1/tags", {"active": "sometimes"}, "active", "bool"),
]


@pytest.mark.parametrize(("method", "path", "params", "status", "code", "loc", "words"), CASES)
async def test_bad_input_is_a_4xx_in_the_error_shape(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    params: dict[str, str],
    status: int,
    code: str,
    loc: list[str] | None,
    words: str,
) -> None:
    r = await client.request(method, path, params=params or None)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"status", "code", "message", "detail"}
    assert (err["status"], err["code"]) == (status, code)
    assert words in err["message"] or any(words in d["msg"] for d in err["detail"]), err
    if loc is not None:
        assert err["detail"][0]["loc"] == loc, err


async def test_a_cursor_of_another_tag_is_refused(
    client: httpx.AsyncClient, tag_ids: dict[tuple[str, str], int]
) -> None:
    """A real cursor of `ma.temp` passed to `ma.state`."""
    r = await client.get(TEMP, params={**W, "raw": "true", "limit": "5"})
    cursor = r.json()["next_cursor"]
    r = await client.get(
        "/api/v1/tags/ma/state/series", params={**W, "raw": "true", "cursor": cursor}
    )
    assert r.status_code == 422
    assert r.json()["error"]["detail"][0]["loc"] == ["query", "cursor"]


async def test_an_unreachable_database_is_503() -> None:
    app = create_app(plant(), database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    async with app.router.lifespan_context(app):
        app.state.pool.timeout = 0.5  # seconds a request waits for a connection
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as c:
            r = await c.get("/api/v1/lines")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "database_unavailable"
