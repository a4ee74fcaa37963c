"""The dashboard's panels equal the API under harder calendars: the downtime rollup tests' story
(stops across minute, hour, break and shift edges, a stop a break cuts in two, one wholly inside
a break, a data gap; tests/engine/test_downtime_rollups.py) with its shift written in
Europe/Berlin local time, and night shifts across both daylight saving changes of 2026, with a
break at 02:30 local: on 29 March that clock does not exist, on 25 October it happens twice
(the engine takes the first, kpi/calendar.py; so must the SQL); and the story in a zone with a
half-hour offset, where the hours themselves differ from UTC's."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest

from config import ShopfloorConfig
from tests.api.conftest import AsyncClientContext
from tests.deploy import compare
from tests.engine.plant import M, plant_config, refresh, setup_db, shift, write
from tests.engine.test_downtime_rollups import WINDOWS, story
from tests.engine.test_downtime_rollups import t as day_t
from tests.kpi.builders import DOWN, IDLE, RUN, SETUP, at, heartbeat

BERLIN = "Europe/Berlin"
# the story's UTC shift 06:00-14:00 and breaks, as Berlin's wall clock shows them (CET, UTC+1)
BERLIN_BREAKS = [("08:00", "08:15"), ("09:30", "09:31"), ("10:59", "11:20"), ("12:00", "12:10"),
                 ("13:00", "14:00")]  # fmt: skip
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


async def loaded(url: str, cfg: ShopfloorConfig, series: dict, now: dt.datetime) -> None:
    ids = setup_db(url, cfg)
    await write(url, ids, series)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await refresh(conn, cfg, now)


async def check_all(
    client: httpx.AsyncClient,
    url: str,
    machines: list[str],
    s: dt.datetime,
    e: dt.datetime,
    tz: str = BERLIN,
) -> list[tuple]:
    """Every panel for line l1 and each machine over [s, e); the Pareto rows."""
    await compare.line_range(client, url, "l1", s, e)
    await compare.series(client, url, "lines", "l1", "l1", s, e, tz)
    for m in machines:
        await compare.series(client, url, "machines", m, "l1", s, e, tz)
        await compare.states(client, url, "l1", m, s, e)
    return await compare.pareto(client, url, "l1", s, e)


@contextlib.asynccontextmanager
async def story_in(
    url: str, tz: str, start: str, end: str, breaks: list[tuple[str, str]]
) -> AsyncIterator[httpx.AsyncClient]:
    """The story, its 06:00-14:00 UTC shift and breaks written on `tz`'s wall clock."""
    cfg = plant_config([M("m1"), M("m2")], shifts=[shift("early", start, end, breaks)], tz=tz)
    now = day_t("16:00")
    await loaded(url, cfg, story(), now)
    async with AsyncClientContext(cfg, url, now) as client:
        yield client


@pytest.fixture
async def berlin(database_url: str) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async with story_in(database_url, BERLIN, "07:00", "15:00", BERLIN_BREAKS) as client:
        yield database_url, client


async def test_stops_across_breaks_in_local_time(berlin: tuple[str, httpx.AsyncClient]) -> None:
    url, client = berlin
    whole = [(a, b) for a, b in WINDOWS if len(a) == len(b) == 5]  # whole minutes
    assert len(whole) >= 12
    for a, b in whole:
        await check_all(client, url, ["m1", "m2"], day_t(a), day_t(b))
    # by hand (tests/engine/test_downtime_rollups.py): m1's 11:50-13:10 UTC stop less the
    # whole-hour break is one event of 1,200 s; m2's 13:00-14:00 stop is one of 3,600 s
    rows = await compare.pareto(client, url, "l1", day_t("06:00"), day_t("14:00"))
    by_key = {(r[0], r[3]): (r[4], r[5]) for r in rows}
    assert by_key[11, "down"] == (1200.0, 1)
    assert by_key[10, "down"] == (390.0 + 3600.0, 2)  # m1 06:58:30-07:20 less the break; m2


KOLKATA = "Asia/Kolkata"  # UTC+05:30: local hours start at :30 UTC
# the story's UTC shift and breaks on Kolkata's wall clock
KOLKATA_BREAKS = [("12:30", "12:45"), ("14:00", "14:01"), ("15:29", "15:50"), ("16:30", "16:40"),
                  ("17:30", "18:30")]  # fmt: skip


@pytest.fixture
async def kolkata(database_url: str) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async with story_in(database_url, KOLKATA, "11:30", "19:30", KOLKATA_BREAKS) as client:
        yield database_url, client


async def test_hours_of_a_half_hour_zone(kolkata: tuple[str, httpx.AsyncClient]) -> None:
    """The hourly panels and the tag trend bucket on the line's local clock, as the API: in
    India each hour runs from :30 to :30 UTC (before, the panels cut at UTC hours)."""
    url, client = kolkata
    for a, b in [("05:00", "15:00"), ("06:00", "14:00"), ("06:10", "13:47"), ("09:00", "09:47")]:
        await check_all(client, url, ["m1", "m2"], day_t(a), day_t(b), KOLKATA)
    hours = await compare.series(
        client, url, "lines", "l1", "l1", day_t("06:00"), day_t("09:00"), KOLKATA
    )
    assert sorted(hours) == [day_t(h) for h in ("05:30", "06:30", "07:30", "08:30")]
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT id FROM tags WHERE machine_id = 'm1' AND name = 'state'")
        (state,) = row.fetchone() or ()
    for interval in ("10m", "1h", "1d"):
        got = await compare.tag_trend(
            client, url, ("l1", "m1", "state"), state, day_t("05:00"), day_t("15:00"), interval
        )
        assert got, interval
        if interval == "1h":
            assert got[0][0] == day_t("04:30")  # the local hour holding 05:00 UTC


def night(day: str) -> dict[tuple[str, str], list]:
    """n1 from 18:00 UTC on `day` to 08:00 UTC the next: running around the break's candidates,
    down from 01:00 to 02:00 UTC, stops before and after."""
    d0 = dt.date.fromisoformat(day)
    d1 = (d0 + dt.timedelta(days=1)).isoformat()
    states = heartbeat(
        [(at(day, "18:00"), IDLE), (at(day, "20:00"), RUN), (at(day, "23:10"), DOWN),
         (at(day, "23:20"), RUN), (at(d1, "01:00"), DOWN), (at(d1, "02:00"), RUN),
         (at(d1, "04:00"), SETUP), (at(d1, "04:20"), RUN), (at(d1, "06:00"), IDLE)],
        until=at(d1, "08:00"),
    )  # fmt: skip
    reasons = [(at(day, "18:00"), 0), (at(day, "23:10"), 10), (at(d1, "01:00"), 11),
               (at(d1, "04:00"), 30), (at(d1, "04:20"), 0)]  # fmt: skip
    return {("n1", "state"): states, ("n1", "reason"): reasons}


@pytest.fixture(params=["2026-03-28", "2026-10-24"])
async def nights(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[tuple[str, str, httpx.AsyncClient]]:
    """One night in a database of its own (the rollups cover the raw retention horizon)."""
    cfg = plant_config(
        [M("n1")],
        shifts=[shift("night", "22:00", "06:00", [("02:30", "02:45")], days=EVERY_DAY)],
        tz=BERLIN,
    )
    day: str = request.param
    now = utc(day + "T00:00:00") + dt.timedelta(days=2)
    await loaded(database_url, cfg, night(day), now)
    async with AsyncClientContext(cfg, database_url, now) as client:
        yield day, database_url, client


async def test_night_shifts_across_daylight_saving_changes(
    nights: tuple[str, str, httpx.AsyncClient],
) -> None:
    day, url, client = nights
    d1 = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    for s, e in [
        (at(day, "18:00"), at(d1, "08:00")),
        (at(d1, "00:00"), at(d1, "02:00")),
        (at(d1, "00:30"), at(d1, "02:15")),
        (at(day, "23:15"), at(d1, "04:10")),
    ]:
        await check_all(client, url, ["n1"], s, e)
    rows = await compare.pareto(client, url, "l1", at(day, "18:00"), at(d1, "08:00"))
    got = {(r[0], r[3]): (r[4], r[5]) for r in rows}
    if day == "2026-10-24":
        # 02:30-02:45 local is 00:30-00:45 UTC (the first of the two 02:30s) while n1 ran: its
        # 01:00-02:00 UTC stop is productive throughout; the shift ends 06:00 CET = 05:00 UTC
        assert got == {
            (11, "down"): (3600.0, 1),
            (10, "down"): (600.0, 1),
            (30, "setup"): (1200.0, 1),
        }
    else:
        # 02:30 local does not exist: read with the offset before the change (CET), the break is
        # 01:30-01:45 UTC, inside the stop; the shift ends 06:00 CEST = 04:00 UTC
        assert got == {(11, "down"): (2700.0, 1), (10, "down"): (600.0, 1)}
