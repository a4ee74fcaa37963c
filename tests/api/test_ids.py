"""Ids as plants write them (`M1`, `FILLER-01`, `Line_2`, `4711`), case-sensitive; a 404 for
an id in another case, or a near miss, names the id meant."""

from __future__ import annotations

import httpx
import pytest

from config import parse_config
from tests.api.conftest import ClientFactory

W = {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T14:00:00Z"}

PLANT_IDS = """
lines:
  - id: Line_2
    machines:
      - {id: FILLER-01, ideal_cycle_s: 1, state_map: {1: running}}
      - {id: "4711", ideal_cycle_s: 1, state_map: {1: running}}
"""


@pytest.mark.parametrize(
    ("path", "loc", "message"),
    [
        ("/api/v1/lines/LA/kpis", "line", "no line 'LA'; did you mean 'la'?"),
        ("/api/v1/lines/Lx/kpis", "line", "no line 'Lx'; did you mean 'lx'?"),
        ("/api/v1/lines/lxx/downtime", "line", "no line 'lxx'; did you mean 'lx'?"),
        ("/api/v1/machines/M1/kpis/series", "machine", "no machine 'M1'; did you mean 'm1'?"),
        ("/api/v1/machines/MA/timeline", "machine", "no machine 'MA'; did you mean 'ma'?"),
        ("/api/v1/machines/nope/downtime", "machine", "no machine 'nope'"),
        (
            "/api/v1/tags/MA/Temp/series",
            "tag",
            "no tag 'Temp' on machine 'MA'; did you mean 'ma/temp'?",
        ),
        (
            "/api/v1/tags/ma/tmp/series",
            "tag",
            "no tag 'tmp' on machine 'ma'; did you mean 'ma/temp'?",
        ),
        (
            "/api/v1/tags/ma/nothing-like-it/series",
            "tag",
            "no tag 'nothing-like-it' on machine 'ma'",
        ),
    ],
)
async def test_a_404_names_the_id_meant(
    client: httpx.AsyncClient, path: str, loc: str, message: str
) -> None:
    """Before: `MA` was a 422 (ids were lower case) and a typo a bare 404."""
    r = await client.get(path, params=W)
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert err["message"] == message
    assert err["detail"][0]["loc"] == ["path", loc]


async def test_ids_of_upper_case_and_digits_are_served(make_client: ClientFactory) -> None:
    cfg = parse_config(PLANT_IDS)
    async with make_client(cfg) as c:
        line = await c.get("/api/v1/lines/Line_2")
        number = await c.get("/api/v1/machines/4711/kpis", params=W)
        filler = await c.get("/api/v1/machines/FILLER-01/downtime", params=W)
        lower = await c.get("/api/v1/machines/filler-01")
    assert line.status_code == 200, line.text
    assert [m["id"] for m in line.json()["machines"]] == ["FILLER-01", "4711"]
    assert number.status_code == 200, number.text
    assert number.json()["machine"] == "4711"
    assert filler.status_code == 200, filler.text
    assert lower.status_code == 404
    assert lower.json()["error"]["message"] == "no machine 'filler-01'; did you mean 'FILLER-01'?"
