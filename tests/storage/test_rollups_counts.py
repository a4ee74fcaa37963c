"""Count sums summed by the server (rollups.server_counts) equal the pure core's, row for row.

A refresh takes the server's per-minute count sums only where they are exactly what the core
gives (plain steps, one ideal cycle in the chunk); other chunks go to the core. The rows must
be the same either way, floats included, and only the chunks named below may use the core.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from storage import rollups
from storage.rollups import refresh
from storage.writer import BatchWriter, ReadingRow
from tests.kpi.builders import heartbeat
from tests.storage.conftest import at, plant, tag_id
from tests.storage.test_rollups import minute_table

RUN, DOWN = 1, 3
NOW = at(61)  # minutes -60 .. 60: twelve 10-minute chunks


def good_counter() -> list[tuple[dt.datetime, float, int]]:
    """(time, value, quality) every 2 s, ~0.4 parts/s, cumulative with wrap 1000: a jump of 11
    at -35 (plausible: the limit is 13), a bad-quality sample at 32, a wrap at ~22:26, a glitch
    at 15, a silence from -13 to -9:30 and a reset at 50 (the last three are the core's: their chunks must use it)."""
    out = []
    extra = 0
    for i in range(60 * 60):
        t = at(-60) + dt.timedelta(seconds=2 * i)
        if i == 751:  # -34:58, where the pattern adds nothing
            extra = 11
        if t == at(50):
            extra = -(i * 2 // 5) + 3  # reset to 3
        value = (i * 2 // 5 + extra) % 1000
        if t == at(15):
            value += 5000  # a glitch
        if at(-13) < t < at(-9.5):
            continue  # a silence across a chunk edge: the first step is from before `since`
        out.append((t, float(value), 2 if t == at(32) else 0))
    return out


async def write(db: psycopg.AsyncConnection) -> None:
    states = heartbeat([(at(-60), RUN), (at(-20), DOWN), (at(-13), RUN)], until=NOW)
    rows = [ReadingRow(t, await tag_id(db, "m1", "state"), float(v)) for t, v in states]
    good = await tag_id(db, "m1", "good")
    rows += [ReadingRow(t, good, v, q) for t, v, q in good_counter()]
    reject = await tag_id(db, "m1", "reject")  # a delta counter: 1 a minute, 5 of bad quality
    rows += [ReadingRow(at(m + 0.5), reject, 1.0) for m in range(-60, 60)]
    rows += [ReadingRow(at(7.75), reject, 5.0, 2)]
    writer = BatchWriter(db)
    await writer.refresh_tags()
    result = await writer.write(rows)
    assert result.inserted == len(rows) and not result.rejected


async def core_only(db: psycopg.AsyncConnection, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """The same refresh with every chunk's counts from the pure core."""
    await db.execute("TRUNCATE machine_minutes, machine_hours")
    await db.execute("DELETE FROM rollup_state")
    with monkeypatch.context() as m:

        async def no_server_counts(*args: object) -> None:
            return None

        m.setattr(rollups, "server_counts", no_server_counts)
        report = await refresh(db, plant(), now=NOW)
    assert report.core_chunks == 13
    return await minute_table(db), await minute_table(db, "machine_hours")


@pytest.mark.parametrize(
    ("cycle_change", "core_chunks"),
    [
        # [-60, -50): no data before the first reading (a count there would span unknown
        # time), [10, 20) glitch, [20, 30) wrap, [50, 60) reset
        (None, 4),
        (1.2, 5),  # and [0, 10): the cycle changes at 5; 1.2 is not dyadic (deltas in order)
    ],
)
async def test_server_counts_equal_core_counts(
    conn: psycopg.AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
    cycle_change: float | None,
    core_chunks: int,
) -> None:
    monkeypatch.setattr(rollups, "CHUNK", dt.timedelta(minutes=10))
    if cycle_change is not None:
        await conn.execute(
            "INSERT INTO machine_ideal_cycles (machine_id, valid_from, ideal_cycle_s) "
            "VALUES ('m1', %s, %s)",
            (at(5), cycle_change),
        )
    await write(conn)
    report = await refresh(conn, plant(), now=NOW)
    assert report.ranges == {"m1": (at(-60), at(61))}
    assert report.minutes == 121
    assert report.core_chunks == core_chunks
    rows, hours = await minute_table(conn), await minute_table(conn, "machine_hours")
    assert sum(r["reject"] for r in rows.values()) == 120  # the bad-quality 5 is skipped
    assert sum(r["counter_glitches"] for r in rows.values()) == 1
    assert sum(r["counter_wraps"] for r in rows.values()) == 1
    assert sum(r["counter_resets"] for r in rows.values()) == 1
    assert rows[at(-35)]["good"] == 12 + 11  # 30 samples of the pattern, and the jump
    cycle_at_40 = cycle_change or 1.0
    assert rows[at(40)]["ideal_reject_s"] == cycle_at_40
    assert rows[at(40)]["ideal_good_s"] == pytest.approx(rows[at(40)]["good"] * cycle_at_40)

    assert await core_only(conn, monkeypatch) == (rows, hours)  # exactly equal, floats too


async def test_refresh_shares_machines_over_connections(
    conn: psycopg.AsyncConnection, plant_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`more` connections give the same rows as one."""
    monkeypatch.setattr(rollups, "CHUNK", dt.timedelta(minutes=10))
    await write(conn)
    async with await psycopg.AsyncConnection.connect(plant_url, autocommit=True) as other:
        report = await refresh(conn, plant(), now=NOW, more=[other])
    assert report.ranges == {"m1": (at(-60), at(61))} and report.core_chunks == 4
    rows, hours = await minute_table(conn), await minute_table(conn, "machine_hours")
    assert await core_only(conn, monkeypatch) == (rows, hours)
