"""Raw samples from the database for the pure KPI core: the sample before `since`, quality."""

from __future__ import annotations

import psycopg
import pytest

from storage.samples import MachineTags, fetch_raw_many, machine_tags
from storage.writer import BatchWriter, ReadingRow
from tests.storage.conftest import at, tag_id


async def test_machine_tags_by_signal(conn: psycopg.AsyncConnection) -> None:
    tags = await machine_tags(conn)
    ids = {n: await tag_id(conn, "m1", n) for n in ("state", "reason", "good", "reject")}
    assert tags["m1"] == MachineTags(
        "m1",
        ids["state"],
        ids["reason"],
        {"good": (ids["good"], "cumulative", 1000), "reject": (ids["reject"], "delta", None)},
    )
    assert tags["m2"] == MachineTags("m2", await tag_id(conn, "m2", "state"), None, {})


async def test_fetch_raw_has_sample_before_since_and_nulls_bad_quality(
    conn: psycopg.AsyncConnection, plant_url: str
) -> None:
    state, good = await tag_id(conn, "m1", "state"), await tag_id(conn, "m1", "good")
    writer = BatchWriter(conn)
    await writer.refresh_tags()
    rows = [
        ReadingRow(at(0), state, 1.0),
        ReadingRow(at(1), state, 3.0),  # last before since
        ReadingRow(at(2), state, 1.0, 2),  # Bad
        ReadingRow(at(3), state, 2.0, 1),  # Uncertain keeps its value
        ReadingRow(at(4), state, 1.0, -32628),  # OPC UA BadSensorFailure
        ReadingRow(at(5), state, 0.0, 48),  # GoodClamped
        ReadingRow(at(6), state, None),
        ReadingRow(at(7), state, 1.0),  # == until: excluded
        ReadingRow(at(1.5), good, 10.0),
        ReadingRow(at(3.5), good, 20.0),
    ]
    assert (await writer.write(rows)).inserted == len(rows)
    tags = (await machine_tags(conn))["m1"]
    (raw,) = await fetch_raw_many(conn, [(tags, at(2), at(7))])
    assert raw.states == [
        (at(1), 3.0),
        (at(2), None),
        (at(3), 2.0),
        (at(4), None),
        (at(5), 0.0),
        (at(6), None),
    ]
    assert raw.reasons == []
    assert raw.counters == {"good": [(at(1.5), 10.0), (at(3.5), 20.0)], "reject": []}
    assert raw.counter_modes == {"good": ("cumulative", 1000), "reject": ("delta", None)}
    assert raw.cycles.at(at(0)) == 1.0
    # nothing before since: no baseline
    assert (await fetch_raw_many(conn, [(tags, at(0), at(1))]))[0].states == [(at(0), 1.0)]


async def test_fetch_raw_refuses_naive_or_reversed_times(conn: psycopg.AsyncConnection) -> None:
    tags = (await machine_tags(conn))["m1"]
    with pytest.raises(ValueError, match=r"m1.*timezone-aware"):
        await fetch_raw_many(conn, [(tags, at(0).replace(tzinfo=None), at(1))])
    with pytest.raises(ValueError, match=r"m1.*before since"):
        await fetch_raw_many(conn, [(tags, at(1), at(0))])
