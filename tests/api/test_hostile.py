"""Hostile input (issue 11, item 5): every one is a 4xx that says why, never a 500.

Before the fix: a NUL in a path segment was a psycopg DataError (500) on the tag series; a
one-day window in year 1 or 9999 an OverflowError (500) in the calendar or the raw timelines; a
bucket of 10^30 minutes an OverflowError (500); a cursor stamped in year 9999 west of UTC an
OverflowError (500); what cannot be an id was looked up (404, or the database's error).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import httpx
import pytest

from api.app import create_app
from tests.api.plant import plant
from tests.services import free_port

DAY1 = {"start": "0001-01-01T00:00:00Z", "end": "0001-01-02T00:00:00Z"}
DAY9999 = {"start": "9999-12-30T00:00:00Z", "end": "9999-12-31T00:00:00Z"}
DAY9999_WEST = {"start": "9999-12-31T00:00:00-01:00", "end": "9999-12-31T23:59:59-01:00"}
WINDOWED = [
    "/api/v1/lines/la/kpis",
    "/api/v1/lines/ld/kpis",
    "/api/v1/lines/lx/kpis",
    "/api/v1/machines/ma/kpis",
    "/api/v1/lines/la/kpis/series",
    "/api/v1/machines/ma/kpis/series",
    "/api/v1/machines/ma/timeline",
    "/api/v1/machines/mx/timeline",
    "/api/v1/lines/la/downtime",
    "/api/v1/machines/ma/downtime",
    "/api/v1/tags/ma/temp/series",
]
SPAN = "outside the span this product handles (1900-01-01 .. 2200-01-01)"
NOT_AN_ID = "is not an id"
# every route with a path id, with {} where the hostile id goes (path parameter named)
ID_ROUTES = [
    ("/api/v1/lines/{}", "line"),
    ("/api/v1/lines/{}/kpis", "line"),
    ("/api/v1/lines/{}/kpis/series", "line"),
    ("/api/v1/lines/{}/downtime", "line"),
    ("/api/v1/machines/{}", "machine"),
    ("/api/v1/machines/{}/kpis", "machine"),
    ("/api/v1/machines/{}/kpis/series", "machine"),
    ("/api/v1/machines/{}/timeline", "machine"),
    ("/api/v1/machines/{}/downtime", "machine"),
    ("/api/v1/tags/{}/temp/series", "machine"),
    ("/api/v1/tags/ma/{}/series", "tag"),
]
BAD_IDS = [
    "m%00a",  # NUL: PostgreSQL text cannot hold it
    "%ED%A0%80",  # a UTF-8 encoded lone surrogate (decoded as U+FFFD)
    "%C3%A9t%C3%A9",  # "été": not an id's alphabet
    "-ma",  # ids start with a letter or digit
    "_ma",
    "m.a",  # letters, digits, _ and - only
    "m%20a",
    "ma%0A",  # a trailing newline ($ in a Python regex would let it through)
    "a" * 64,  # one longer than an id can be
    "x" * 5000,
]


def _cursor(tag: object, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"tag": tag, "after": after}).encode()).decode()


def _problem(r: httpx.Response, status: int, loc: list[str], words: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["detail"][0]["loc"] == loc, err
    assert words in err["message"], err
    assert len(err["message"]) < 300, "a long value is cut in the message"
    return err


@pytest.mark.parametrize("window", [DAY1, DAY9999, DAY9999_WEST], ids=["year1", "9999", "9999w"])
@pytest.mark.parametrize("path", WINDOWED)
async def test_a_window_outside_the_span_is_refused(
    client: httpx.AsyncClient, path: str, window: dict[str, str]
) -> None:
    _problem(await client.get(path, params=window), 422, ["query", "start"], SPAN)


@pytest.mark.parametrize("path", ["/api/v1/machines/ma/kpis", "/api/v1/tags/ma/temp/series"])
@pytest.mark.parametrize(
    ("params", "which"),
    [
        ({"start": "1899-12-31T23:59:59Z"}, "start"),
        ({"start": "2026-03-02T06:00:00Z", "end": "2200-01-01T00:00:00Z"}, "end"),
        ({"start": "2026-03-02T06:00:00Z", "end": "2200-01-01T00:30:00-01:00"}, "end"),
    ],
)
async def test_the_span_edges(
    client: httpx.AsyncClient, path: str, params: dict[str, str], which: str
) -> None:
    _problem(await client.get(path, params=params), 422, ["query", which], SPAN)


@pytest.mark.parametrize(("template", "kind"), ID_ROUTES)
@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda b: b[:12])
async def test_what_cannot_be_an_id_is_refused_on_every_route(
    client: httpx.AsyncClient, template: str, kind: str, bad: str
) -> None:
    r = await client.get(template.format(bad))
    err = _problem(r, 422, ["path", kind], NOT_AN_ID)
    assert "a-z, 0-9, _ and -" in err["message"]


async def test_ids_are_refused_without_asking_the_database() -> None:
    """With no database at all, a NUL in a tag's machine is still a 422, not a 503."""
    app = create_app(plant(), database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    async with app.router.lifespan_context(app):
        app.state.pool.timeout = 0.5
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as c:
            r = await c.get("/api/v1/tags/m%00a/temp/series")
            unknown_tag = await c.get("/api/v1/tags/ma/temp/series")
    _problem(r, 422, ["path", "machine"], NOT_AN_ID)
    assert unknown_tag.status_code == 503  # a real id does go to the database


W = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T14:00:00Z"}


@pytest.mark.parametrize(
    ("path", "bucket"),
    [
        ("/api/v1/lines/la/kpis/series", "1" + "0" * 30 + "m"),
        ("/api/v1/machines/ma/kpis/series", "1" + "0" * 30 + "h"),
        ("/api/v1/machines/ma/kpis/series", "9" * 5000 + "m"),
        ("/api/v1/machines/ma/kpis/series", "1h\n"),
        ("/api/v1/machines/ma/kpis/series", "\u0661\u0665m"),  # Arabic-Indic 15
        ("/api/v1/tags/ma/temp/series", "1" + "0" * 30 + "m"),
        ("/api/v1/tags/ma/temp/series", "1m\n"),
        ("/api/v1/tags/ma/temp/series", "\u0661m"),
        ("/api/v1/tags/ma/temp/series", "99999999d"),
    ],
    ids=lambda v: v[:20],
)
async def test_absurd_buckets_are_refused(
    client: httpx.AsyncClient, path: str, bucket: str
) -> None:
    r = await client.get(path, params={**W, "bucket": bucket})
    _problem(r, 422, ["query", "bucket"], "bad bucket")


@pytest.mark.parametrize(
    "after",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00", "1800-01-01T00:00:00Z"],
)
async def test_a_cursor_outside_the_span_is_not_ours(
    client: httpx.AsyncClient, tag_ids: dict[tuple[str, str], int], after: str
) -> None:
    cursor = _cursor(tag_ids[("ma", "temp")], after)
    r = await client.get(
        "/api/v1/tags/ma/temp/series", params={**W, "raw": "true", "cursor": cursor}
    )
    _problem(r, 422, ["query", "cursor"], "not a cursor returned by this API")


@pytest.mark.parametrize(
    ("params", "loc", "words"),
    [
        ({"start": "2026-03-02T06:00:00\ud800Z"}, "start", "not an ISO 8601 time"),
        ({"start": "x" * 5000}, "start", "(5000 characters)"),
        ({"start": "0000-01-01T00:00:00Z"}, "start", "not an ISO 8601 time"),
        ({"start": "10000-01-01T00:00:00Z"}, "start", "not an ISO 8601 time"),
        ({"start": "2026-03-02T06:00:00 01:00"}, "start", "%2B"),
        ({"start": "2026-03-02T06:00:00\x00Z"}, "start", "not an ISO 8601 time"),
        ({"start": "2026-03-02T06:00:00xZ"}, "start", "not an ISO 8601 time"),
    ],
    ids=["surrogate", "long", "year0", "year10000", "lost-plus", "nul", "stray"],
)
async def test_odd_times_are_refused(
    client: httpx.AsyncClient, params: dict[str, str], loc: str, words: str
) -> None:
    # a lone surrogate cannot be UTF-8 encoded by a client: sent as its (invalid) UTF-8 bytes
    query = "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in params.items())
    r = await client.get(f"/api/v1/machines/ma/kpis?{query}")
    _problem(r, 422, ["query", loc], words)


@pytest.mark.parametrize("limit", ["99999999999999999999999", "-1", "1e3", "\u0661"])
async def test_odd_limits_are_refused(client: httpx.AsyncClient, limit: str) -> None:
    r = await client.get("/api/v1/tags/ma/temp/series", params={**W, "raw": "true", "limit": limit})
    _problem(r, 422, ["query", "limit"], "limit")
