"""`shopfloor rollups refresh|rebuild` end to end (a subprocess against the real database), the
per-machine refresh lock, and the config basis that makes a refresh rebuild a machine whose
KPI-relevant config changed (storage.rollup_basis, docs/rollups.md "Config changes")."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from config import ShopfloorConfig, parse_config
from storage import rollups
from storage.engine import KpiEngine
from storage.rollup_basis import machine_lock
from storage.rollups import floor_minute, refresh, rollup_margin
from storage.writer import BatchWriter, ReadingRow
from tests.engine.plant import assert_same
from tests.kpi.builders import heartbeat
from tests.storage.conftest import PLANT, plant, tag_id
from tests.storage.test_rollups import minute_table

ROOT = Path(__file__).resolve().parents[2]
RUN, IDLE, DOWN = 1, 2, 3
OLD_MAP = "{0: planned_stop, 1: running, 2: idle, 3: down}"
NEW_MAP = "{0: planned_stop, 1: running, 2: idle, 3: setup}"  # m1's 3 is now a changeover
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)

# The CLI refreshes up to the wall clock: the story ends half an hour before it and spans three
# one-day chunks, so a rebuild shows progress lines.
NOW = dt.datetime.now(dt.UTC)
END = NOW.replace(minute=0, second=0, microsecond=0) - HOUR
START = END - 50 * HOUR


def story() -> list[tuple[dt.datetime, int]]:
    """Each hour: runs, a 4-minute stop (3), 3 minutes idle, a 1-minute stop (short)."""
    changes = []
    hour = START
    while hour < END:
        for minute, state in ((0, RUN), (20, DOWN), (24, RUN), (40, IDLE), (43, RUN), (50, DOWN)):
            changes.append((hour + dt.timedelta(minutes=minute), state))
        changes.append((hour + dt.timedelta(minutes=51), RUN))
        hour += HOUR
    return heartbeat(changes, until=END + dt.timedelta(minutes=30))


async def write_story(db: psycopg.AsyncConnection) -> None:
    state, good = await tag_id(db, "m1", "state"), await tag_id(db, "m1", "good")
    rows = [ReadingRow(t, state, float(v)) for t, v in story()]
    rows += [ReadingRow(START + k * 60 * dt.timedelta(seconds=1), good, float(k * 7 % 1000))
             for k in range(50 * 60)]  # fmt: skip
    writer = BatchWriter(db)
    await writer.refresh_tags()
    result = await writer.write(rows)
    assert result.inserted == len(rows) and not result.rejected


def config_file(tmp_path: Path, text: str = PLANT, name: str = "plant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def changed(text: str = PLANT) -> str:
    assert OLD_MAP in text
    return text.replace(OLD_MAP, NEW_MAP)


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`shopfloor …` in a subprocess (no SHOPFLOOR_* overrides from the test's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=300,
    )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}


async def kpis(
    conn: psycopg.AsyncConnection, cfg: ShopfloorConfig, start: dt.datetime, end: dt.datetime
) -> tuple[object, object]:
    """(raw-only, with rollups) KPIs of m1 over [start, end)."""
    now = dt.datetime.now(dt.UTC)
    raw = await KpiEngine(cfg, use_rollups=False).machine(conn, "m1", start, end, now=now)
    rolled = await KpiEngine(cfg).machine(conn, "m1", start, end, now=now)
    return raw, rolled


def times(k: object) -> tuple[float, ...]:
    return tuple(getattr(k, f) for f in ("down_time_s", "setup_time_s", "short_stop_s"))


async def test_rebuild_after_a_state_map_change_gives_the_raw_kpis(
    conn: psycopg.AsyncConnection, plant_url: str, tmp_path: Path
) -> None:
    await write_story(conn)
    old, new = config_file(tmp_path), config_file(tmp_path, changed(), "new.yaml")
    done = cli("rollups", "refresh", "--config", old, "--database-url", plant_url)
    assert done.returncode == 0, done.stderr
    summary = re.fullmatch(
        r"rollups refresh: 1 of 2 machine\(s\) recomputed, ([\d,]+) minute\(s\) from "
        rf"{START:%Y-%m-%d %H:%M} UTC, \d+\.\d s\n",
        done.stdout,
    )
    assert summary, done.stdout
    minutes = int(summary[1].replace(",", ""))  # from the first reading to the CLI's now
    assert (
        (floor_minute(NOW) - START) // MINUTE
        <= minutes
        <= (dt.datetime.now(dt.UTC) - START) // MINUTE
    )
    cfg = parse_config(changed(), env={})
    raw, rolled = await kpis(conn, cfg, START, END)
    assert times(raw) != pytest.approx(times(rolled))  # rows classified with the old map

    done = cli(
        "rollups", "rebuild", "--config", new, "--database-url", plant_url, "--connections", "3"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    progress = re.findall(
        r"^m1: (.+) UTC \.\. (.+) UTC: ([\d,]+) / ([\d,]+) minutes$", done.stderr, re.M
    )
    assert len(progress) == 3, done.stderr  # one line per day chunk
    assert progress[-1][2] == progress[-1][3]  # all done
    assert progress[0][0] == f"{START:%Y-%m-%d %H:%M}"  # from the first reading
    assert "computed with another configuration (state_map 3: down -> setup)" in done.stderr
    raw, rolled = await kpis(conn, cfg, START, END)
    assert_same(raw, rolled)
    assert raw.setup_time_s == 50 * 240  # the 4-minute stops, now changeovers
    for hour in (START + 5 * HOUR, END - 3 * HOUR):  # hour windows: rows of single chunks
        assert_same(*await kpis(conn, cfg, hour, hour + HOUR))


async def test_since_limits_what_a_rebuild_recomputes(
    conn: psycopg.AsyncConnection, plant_url: str, tmp_path: Path
) -> None:
    """Readings corrected behind the writer's back (no dirty mark): a refresh keeps the rows,
    `rebuild --since T` recomputes from T (less the margin) on, a plain rebuild everything."""
    await write_story(conn)
    path, cfg = config_file(tmp_path), plant()
    assert cli("rollups", "refresh", "--config", path, "--database-url", plant_url).returncode == 0
    state = await tag_id(conn, "m1", "state")
    early, late = START + 10 * HOUR, END - 5 * HOUR  # two whole hours of down
    for hour in (early, late):
        await conn.execute(
            "UPDATE readings SET value = %s WHERE tag_id = %s AND time >= %s AND time < %s",
            (DOWN, state, hour, hour + HOUR),
        )

    def differs(pair: tuple[object, object]) -> bool:
        return times(pair[0]) != pytest.approx(times(pair[1]))

    done = cli("rollups", "refresh", "--config", path, "--database-url", plant_url)
    assert done.returncode == 0 and done.stderr == ""  # a routine refresh: the summary only
    assert done.stdout.startswith("rollups refresh: 1 of 2 machine(s) recomputed, ")
    assert differs(await kpis(conn, cfg, early, early + HOUR))
    assert differs(await kpis(conn, cfg, late, late + HOUR))

    since = late - 2 * HOUR
    done = cli(
        "rollups", "rebuild", "--config", path, "--database-url", plant_url,
        "--since", since.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = floor_minute(since - rollup_margin(cfg.settings.kpi))
    assert f" from {first:%Y-%m-%d %H:%M} UTC, " in done.stdout
    assert differs(await kpis(conn, cfg, early, early + HOUR))  # before T: left alone
    assert_same(*await kpis(conn, cfg, since, END))
    assert (await kpis(conn, cfg, late, late + HOUR))[1].down_time_s == 3600

    done = cli(
        "rollups", "rebuild", "--config", path, "--database-url", plant_url, "--machine", "m1"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rollups rebuild: 1 of 1 machine(s) recomputed, ")
    assert_same(*await kpis(conn, cfg, START, END))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rebuild", "--since", "2026-03-01T06:00:00"], "has no time zone: add one"),
        (["rebuild", "--since", "2026-03-01"], "has no time zone"),
        (["rebuild", "--since", "yesterday"], "'yesterday' is not an ISO 8601 time"),
        (["rebuild", "--since", "2999-01-01T00:00:00Z"], "is in the future"),
        (["refresh", "--machine", "m9"], "no machine m9 in"),
        (["refresh", "--since", "2026-03-01T06:00:00Z"], "unrecognized arguments: --since"),
        (["refresh", "--connections", "0"], "'0': a whole number from 1 to 16"),
        (["rebuild", "--connections", "two"], "'two': a whole number from 1 to 16"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    plant_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    done = cli("rollups", *args, "--config", config_file(tmp_path), "--database-url", plant_url)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert done.stdout == ""


def test_an_unreachable_or_unmigrated_database_is_a_clear_error(
    database_url: str, tmp_path: Path
) -> None:
    path = config_file(tmp_path)
    gone = "postgresql://nobody@127.0.0.1:1/nothing"
    done = cli("rollups", "refresh", "--config", path, "--database-url", gone)
    assert done.returncode == 1
    assert "cannot connect to the database at 127.0.0.1:1/nothing" in done.stderr, done.stderr
    done = cli("rollups", "rebuild", "--config", path, "--database-url", database_url)
    assert done.returncode == 1
    assert "schema is at version 0" in done.stderr and "shopfloor db migrate" in done.stderr


async def test_a_machine_that_fails_is_named_and_the_exit_code_is_1(
    conn: psycopg.AsyncConnection, plant_url: str, tmp_path: Path
) -> None:
    await write_story(conn)
    await conn.execute("DELETE FROM machine_ideal_cycles WHERE machine_id = 'm1'")
    done = cli("rollups", "refresh", "--config", config_file(tmp_path), "--database-url", plant_url)
    assert done.returncode == 1
    assert "failed for 1 machine(s):\n  m1: ValueError: machine 'm1' has no row" in done.stderr


async def test_two_refreshes_at_once_take_turns_per_machine(
    conn: psycopg.AsyncConnection, plant_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the lock, the second COPY of a chunk's minutes fails on the primary key."""
    monkeypatch.setattr(rollups, "CHUNK", dt.timedelta(hours=2))
    await write_story(conn)
    cfg = plant()
    async with await psycopg.AsyncConnection.connect(plant_url, autocommit=True) as other:
        one, two = await asyncio.gather(
            refresh(conn, cfg, now=NOW, wait=True), refresh(other, cfg, now=NOW, wait=True)
        )
    assert sorted([*one.ranges, *two.ranges]) == ["m1", "m1"]
    assert_same(*await kpis(conn, cfg, START, END))


async def test_the_collector_skips_a_machine_the_command_holds_and_the_command_waits(
    conn: psycopg.AsyncConnection, plant_url: str, tmp_path: Path
) -> None:
    await write_story(conn)
    cfg = plant()
    async with (
        await psycopg.AsyncConnection.connect(plant_url, autocommit=True) as holder,
        machine_lock(holder, "m1", wait=False) as held,
    ):
        assert held
        report = await refresh(conn, cfg, now=NOW)  # the collector's way: no wait
        assert report.ranges == {}
        cur = await conn.execute("SELECT dirty_since FROM rollup_state WHERE machine_id = 'm1'")
        assert await cur.fetchone() == (START,)  # the mark waits for the next refresh
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collector.cli", "rollups", "refresh",
            "--config", str(config_file(tmp_path)), "--database-url", plant_url,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT,
        )  # fmt: skip
        assert command.stderr is not None
        line = await asyncio.wait_for(command.stderr.readline(), 60)
        assert b"m1: another refresh holds it" in line and b"waiting" in line
        await asyncio.sleep(0.5)
        assert command.returncode is None  # still waiting
    out, err = await asyncio.wait_for(command.communicate(), 120)
    assert command.returncode == 0, err
    assert out.startswith(b"rollups refresh: 1 of 2 machine(s) recomputed")
    assert_same(*await kpis(conn, cfg, START, END))


async def test_a_refresh_rebuilds_a_machine_whose_kpi_settings_changed(
    conn: psycopg.AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """The collector's path: a changed basis makes the next refresh recompute the machine from
    its first reading, warn, and move late_seq (the API's cache); an unrecorded basis (rollups
    from before migration 006) is recorded without recomputing."""
    await write_story(conn)
    before = parse_config(PLANT, env={})
    await refresh(conn, before, now=NOW)
    await conn.execute("UPDATE rollup_state SET basis = NULL")
    report = await refresh(conn, before, now=NOW)
    assert report.ranges["m1"][0] > END  # the margin before computed_until only
    rows = await minute_table(conn)

    after = parse_config(PLANT + "settings:\n  kpi: {short_stop_s: 300}\n", env={})
    cur = await conn.execute("SELECT late_seq FROM rollup_state WHERE machine_id = 'm1'")
    (late_seq,) = await cur.fetchone() or (None,)
    with caplog.at_level(logging.WARNING, logger="storage.rollup_basis"):
        report = await refresh(conn, after, now=NOW)
    assert report.ranges["m1"][0] == START
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(
        "rollups m1: computed with another configuration (kpi.short_stop_s 120 -> 300): "
    )
    cur = await conn.execute("SELECT late_seq FROM rollup_state WHERE machine_id = 'm1'")
    assert await cur.fetchone() == (late_seq + 1,)
    assert await minute_table(conn) != rows
    assert_same(*await kpis(conn, after, START, END))
    caplog.clear()
    report = await refresh(conn, after, now=NOW)  # recorded: no second rebuild
    assert report.ranges["m1"][0] > END and not caplog.records
