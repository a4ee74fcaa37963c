"""Readings a counter does not count (Bad quality, null, NaN, ±inf) are skipped alike by the
server's count sums (storage.samples.COUNTED_SQL) and by the pure core (kpi.counts.count_value):
the server keeps such chunks, and the rows equal the core's, floats included."""

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

NOW = at(31)  # minutes -30 .. 30: seven 10-minute chunks, each fetched from 3 minutes before
# (context_margin: short_stop_s 120 + max_gap_s 60)
STEP = dt.timedelta(seconds=2)
INF, NAN = float("inf"), float("nan")

# (time, value, quality) of the cumulative counter that replace its plain sample; the last
# sample before a chunk's fetch is its baseline (at(-13) - STEP is the last before at(-13)).
ODD_GOOD = {
    at(-13) - STEP: (INF, 0),  # baseline of the chunk [-10, 0)
    at(-3) - STEP: (NAN, 0),  # of [0, 10)
    at(5.5): (-INF, 0),
    at(7) - STEP: (99_999.0, 2),  # Bad: of [10, 20)
    at(15): (99_999.0, -32_628),  # Bad (an OPC UA Bad StatusCode)
    at(25): (None, 0),
}
ODD_REJECT = [(at(3.25), INF, 0), (at(13.25), NAN, 0), (at(23.25), 5.0, 2), (at(24.25), -INF, 0)]


async def write(db: psycopg.AsyncConnection) -> None:
    state, good, reject = [await tag_id(db, "m1", name) for name in ("state", "good", "reject")]
    rows = [ReadingRow(t, state, 1.0) for t, _ in heartbeat([(at(-30), 1)], until=NOW)]
    for i in range(30 * 60):
        t = at(-30) + i * STEP
        value, quality = ODD_GOOD.get(t, (float(i * 2 // 5), 0))
        rows.append(ReadingRow(t, good, value, quality))
    rows += [ReadingRow(at(m + 0.5), reject, 1.0) for m in range(-30, 30)]
    rows += [ReadingRow(t, reject, v, q) for t, v, q in ODD_REJECT]
    writer = BatchWriter(db)
    await writer.refresh_tags()
    result = await writer.write(rows)
    assert result.inserted == len(rows) and not result.rejected


async def test_uncounted_readings_are_skipped_by_the_server_as_by_the_core(
    conn: psycopg.AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollups, "CHUNK", dt.timedelta(minutes=10))
    await write(conn)
    report = await refresh(conn, plant(), now=NOW)
    assert report.ranges == {"m1": (at(-30), at(31))}
    # no reset, wrap, glitch or cycle change: all the server's but the first chunk, whose fetch
    # starts before the first reading (unknown time, which a count could span: the core flags
    # such counts, the server does not)
    assert report.core_chunks == 1
    rows, hours = await minute_table(conn), await minute_table(conn, "machine_hours")
    assert sum(r["reject"] for r in rows.values()) == 60  # the four odd ones are not counted
    assert not any(r[c] for r in rows.values() for c in rollups.FLAG_COLUMNS)

    await conn.execute("TRUNCATE machine_minutes, machine_hours")
    await conn.execute("DELETE FROM rollup_state")

    async def no_server_counts(*args: object) -> None:
        return None

    monkeypatch.setattr(rollups, "server_counts", no_server_counts)
    core = await refresh(conn, plant(), now=NOW)
    assert core.core_chunks == 7
    assert await minute_table(conn) == rows  # exactly equal, floats too
    assert await minute_table(conn, "machine_hours") == hours
