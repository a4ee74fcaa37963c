"""The batch writer against the real hypertable: exactly once, bad rows kept apart, error kinds."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from zoneinfo import ZoneInfo

import psycopg
import pytest

from adapters.base import Quality
from config import DEMO_CONFIG, load_config
from storage.migrate import migrate
from storage.plant_sync import sync_plant, tag_ids
from storage.writer import (
    SMALLINT_MAX,
    SMALLINT_MIN,
    BatchWriter,
    PermanentWriteError,
    Quarantined,
    ReadingRow,
    TransientWriteError,
)

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def migrated_url(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        sync_plant(conn, load_config(DEMO_CONFIG))
    return database_url


@pytest.fixture
def ids(migrated_url: str) -> list[int]:
    with psycopg.connect(migrated_url) as conn:
        return sorted(i for ids in tag_ids(conn).values() for i in ids)


@pytest.fixture
async def writer(migrated_url: str) -> AsyncIterator[BatchWriter]:
    w = await BatchWriter.connect(migrated_url)
    yield w
    await w.close()


def rows_for(ids: list[int], n: int, start: dt.datetime = T0) -> list[ReadingRow]:
    return [
        ReadingRow(
            start + dt.timedelta(seconds=i // len(ids)), ids[i % len(ids)], float(i), 0, None
        )
        for i in range(n)
    ]


def stored(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT time, tag_id, value, quality, text_value FROM readings ORDER BY time, tag_id"
        ).fetchall()


async def test_batch_written_twice_is_stored_once(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    batch = rows_for(ids, 1000)
    first = await writer.write(batch)
    assert (first.inserted, first.duplicates, first.used_staging) == (1000, 0, False)
    again = await writer.write(batch)
    assert (again.inserted, again.duplicates, again.used_staging) == (0, 1000, True)
    rows = stored(migrated_url)
    assert len(rows) == 1000
    assert sorted(rows) == sorted(tuple(r) for r in batch)


async def test_overlapping_replay_inserts_only_new_rows(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    batch = rows_for(ids, 460)
    await writer.write(batch[:300])
    result = await writer.write(batch[200:])  # 100 already stored, 160 new
    assert (result.inserted, result.duplicates) == (160, 100)
    assert len(stored(migrated_url)) == 460


async def test_same_key_twice_in_one_batch_keeps_the_first(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    a = ReadingRow(T0, ids[0], 1.0)
    b = ReadingRow(T0, ids[0], 2.0)
    result = await writer.write([a, b])
    assert (result.inserted, result.duplicates) == (1, 1)
    assert stored(migrated_url) == [(T0, ids[0], 1.0, 0, None)]


async def test_bad_rows_are_reported_and_kept_apart_good_rows_written(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    good = rows_for(ids, 50)
    batch: list[tuple] = list(good)
    batch.insert(3, (T0.replace(tzinfo=None), ids[0], 1.0, 0, None))
    batch.insert(10, (T0, 999_999, 1.0, 0, None))
    batch.insert(20, (T0, ids[1], 1.0, 0, "bad\x00text"))
    batch.insert(30, (T0, ids[2], 1.0, 70000, None))
    batch.insert(40, (T0, ids[3], "12", 0, None))
    result = await writer.write(batch)
    assert result.inserted == 50
    assert [(r.index, r.reason) for r in result.rejected] == [
        (3, "time has no time zone (naive datetimes are ambiguous)"),
        (10, "unknown tag_id 999999"),
        (20, "text_value contains a NUL byte"),
        (30, "quality 70000 is not a smallint"),
        (40, "value is str, not a number"),
    ]
    assert len(stored(migrated_url)) == 50
    with psycopg.connect(migrated_url) as conn:
        kept = conn.execute("SELECT tag_id, reason FROM rejected_readings ORDER BY id").fetchall()
    assert [reason for _, reason in kept] == [r.reason for r in result.rejected]
    assert kept[1] == (999_999, "unknown tag_id 999999")


async def test_rows_the_server_refuses_are_isolated_by_bisection(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    # A constraint only the server knows (as a site-specific CHECK would be).
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE readings ADD CONSTRAINT no_666 CHECK (value <> 666)")
    batch = rows_for(ids, 1000)
    batch[666] = batch[666]._replace(value=666.0)
    result = await writer.write(batch)
    assert result.inserted == 999
    assert [r.index for r in result.rejected] == [666]
    assert "no_666" in result.rejected[0].reason and "23514" in result.rejected[0].reason
    assert len(stored(migrated_url)) == 999


async def test_new_tags_are_picked_up_without_restart(
    writer: BatchWriter, migrated_url: str
) -> None:
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        new_id = conn.execute(
            "INSERT INTO tags (machine_id, name, signal, source, protocol, address) "
            "VALUES ('filler', 'late', 'measurement', 's', 'opcua', 'ns=2;s=x') RETURNING id"
        ).fetchone()[0]
    result = await writer.write([ReadingRow(T0, new_id, 1.5)])
    assert (result.inserted, result.rejected) == (1, [])


async def test_lost_connection_is_transient(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    await writer.write(rows_for(ids, 10))
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(TransientWriteError) as info:
        await writer.write(rows_for(ids, 10, start=T0 + dt.timedelta(hours=1)))
    assert info.value.retriable
    # The caller retries on a new connection; the retried batch lands once.
    fresh = await BatchWriter.connect(migrated_url)
    try:
        assert (await fresh.write(rows_for(ids, 10, T0 + dt.timedelta(hours=1)))).inserted == 10
    finally:
        await fresh.close()
    assert len(stored(migrated_url)) == 20


async def test_missing_schema_is_permanent(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE readings RENAME TO readings_gone")
    with pytest.raises(PermanentWriteError) as info:
        await writer.write(rows_for(ids, 5))
    assert not info.value.retriable
    assert "readings" in str(info.value)


def tag_id_of(url: str, machine: str, name: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT id FROM tags WHERE machine_id = %s AND name = %s", (machine, name)
        ).fetchone()
    assert row is not None, (machine, name)
    return int(row[0])


def rollup_marks(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT machine_id, dirty_since, dirty_seq FROM rollup_state ORDER BY 1"
        ).fetchall()


async def test_rows_of_every_valid_shape_are_stored_as_given(
    writer: BatchWriter, migrated_url: str
) -> None:
    """Rows off the common shape (UTC datetime, float, int quality) skip the quick screen and
    are judged by the full one: all of these are valid readings."""
    temp = tag_id_of(migrated_url, "filler", "temperature")
    speed = tag_id_of(migrated_url, "filler", "speed")
    berlin = ZoneInfo("Europe/Berlin")
    batch: list[Sequence[object]] = [
        ReadingRow(T0, temp, 1.5),
        (
            dt.datetime(2026, 3, 2, 8, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            temp,
            7,
            0,
            None,
        ),
        [dt.datetime(2026, 3, 2, 7, 0, 2, tzinfo=berlin), temp, None, Quality.BAD, None],
        (T0 + dt.timedelta(seconds=3), temp, None, 1, "no sensor"),
        (T0 + dt.timedelta(seconds=4), temp, -2.5, SMALLINT_MIN, "ok"),
        (T0, speed, 2**53, SMALLINT_MAX, None),
    ]
    result = await writer.write(batch)
    assert (result.inserted, result.rejected, result.used_staging) == (6, [], False)
    assert stored(migrated_url) == [
        (T0, temp, 1.5, 0, None),
        (T0, speed, 2.0**53, SMALLINT_MAX, None),
        (T0 + dt.timedelta(seconds=1), temp, 7.0, 0, None),
        (T0 + dt.timedelta(seconds=2), temp, None, 2, None),
        (T0 + dt.timedelta(seconds=3), temp, None, 1, "no sensor"),
        (T0 + dt.timedelta(seconds=4), temp, -2.5, SMALLINT_MIN, "ok"),
    ]


async def test_rejected_rows_keep_their_batch_positions_around_a_new_tag(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    """A tag created after the writer connected, between bad rows: the refresh accepts its row
    (and learns it feeds KPIs); the bad rows keep their positions and reasons."""
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        new_id = conn.execute(
            "INSERT INTO tags (machine_id, name, signal, source, protocol, address) "
            "VALUES ('capper', 'late_state', 'state', 's', 'opcua', 'ns=2;s=y') RETURNING id"
        ).fetchone()[0]
    batch: list[Sequence[object]] = list(rows_for(ids, 6))
    batch.insert(1, (T0, 999_999, 1.0, 0, None))
    batch.insert(3, (T0 - dt.timedelta(minutes=5), new_id, 2.0, 0, None))
    batch.insert(5, (T0, ids[0], 1.0, 0, None, "sixth field"))
    batch.append((T0, ids[1], 1.0, -40_000, None))
    result = await writer.write(batch)
    assert result.inserted == 7
    assert [(r.index, r.reason) for r in result.rejected] == [
        (1, "unknown tag_id 999999"),
        (5, "expected 5 fields (time, tag_id, value, quality, text_value), got 6"),
        (9, "quality -40000 is not a smallint"),
    ]
    assert (T0 - dt.timedelta(minutes=5), new_id, 2.0, 0, None) in stored(migrated_url)
    assert ("capper", T0 - dt.timedelta(minutes=5), 1) in rollup_marks(migrated_url)


async def test_only_readings_of_kpi_tags_mark_rollups_dirty(
    writer: BatchWriter, migrated_url: str
) -> None:
    filler_temp = tag_id_of(migrated_url, "filler", "temperature")
    filler_good = tag_id_of(migrated_url, "filler", "good_count")
    filler_state = tag_id_of(migrated_url, "filler", "state")
    capper_temp = tag_id_of(migrated_url, "capper", "temperature")
    at = [T0 + dt.timedelta(seconds=s) for s in range(10)]

    # Measurements only: no statement, no mark (not even a rollup_state row).
    result = await writer.write(
        [
            ReadingRow(T0 - dt.timedelta(hours=1), filler_temp, 20.0),
            ReadingRow(T0, capper_temp, 1.0),
        ]
    )
    assert (result.inserted, rollup_marks(migrated_url)) == (2, [])

    # Mixed: the earliest KPI reading per machine, whatever earlier measurements came with it.
    await writer.write(
        [
            ReadingRow(at[5], filler_good, 10.0),
            ReadingRow(at[0], filler_temp, 21.0),
            ReadingRow(at[2], filler_state, 1.0),
            ReadingRow(at[3], filler_good, 9.0),
            ReadingRow(at[1], capper_temp, 2.0),
        ]
    )
    assert rollup_marks(migrated_url) == [("filler", at[2], 1)]

    # A KPI reading the server refuses is not stored and marks nothing.
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE readings ADD CONSTRAINT no_666 CHECK (value <> 666)")
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("UPDATE rollup_state SET dirty_since = NULL")  # as a refresh takes it
    result = await writer.write(
        [
            ReadingRow(at[6], filler_temp, 1.0),
            ReadingRow(at[1], filler_good, 666.0),
            ReadingRow(at[8], filler_good, 12.0),
            ReadingRow(at[7], filler_state, 2.0),
        ]
    )
    assert (result.inserted, [r.index for r in result.rejected]) == (3, [1])
    assert rollup_marks(migrated_url) == [("filler", at[7], 2)]


async def test_text_that_is_not_unicode_and_times_beyond_the_span_are_rejected_not_fatal(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    """issue 11, items 1 and 3: a lone surrogate (a JSON escape) raised UnicodeEncodeError out
    of COPY and killed the collector's writer; a year-1 reading was stored and broke rollups and
    KPIs for good. Both are rejected with their reason; the rest of the batch is stored."""
    good = rows_for(ids, 20)
    batch: list[tuple] = list(good)
    batch.insert(2, (T0, ids[0], None, 0, "lone \ud800"))
    batch.insert(5, (dt.datetime(1, 1, 1, tzinfo=dt.UTC), ids[1], 1.0, 0, None))
    batch.insert(9, (dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), ids[1], 1.0, 0, None))  # fmt: skip
    batch.insert(12, (dt.datetime(2200, 1, 1, tzinfo=dt.UTC), ids[2], 1.0, 0, None))
    batch.insert(14, (T0 + dt.timedelta(hours=1), ids[3], None, 0, "Störung: Füllstand"))
    result = await writer.write(batch)
    assert result.inserted == 21
    assert [(r.index, r.reason) for r in result.rejected] == [
        (2, "text_value is not valid Unicode (surrogates not allowed at position 5)"),
        (5, "time 0001-01-01T00:00:00+00:00 is outside the span this product handles (1900-01-01 .. 2200-01-01)"),
        (9, "time 0001-01-01T00:30:00+01:00 is outside the span this product handles (1900-01-01 .. 2200-01-01)"),
        (12, "time 2200-01-01T00:00:00+00:00 is outside the span this product handles (1900-01-01 .. 2200-01-01)"),
    ]  # fmt: skip
    with psycopg.connect(migrated_url) as conn:
        kept = conn.execute("SELECT row_repr FROM rejected_readings ORDER BY id").fetchall()
        text = conn.execute("SELECT text_value FROM readings WHERE text_value IS NOT NULL")
        assert text.fetchall() == [("Störung: Füllstand",)]
    assert "\\ud800" in kept[0][0]  # kept as an escape: storable


async def test_quarantined_input_is_stored_with_the_batch(
    writer: BatchWriter, ids: list[int], migrated_url: str
) -> None:
    """Input refused before it became a row (a malformed payload) is kept with where it came
    from, in the batch's transaction; a NUL or a surrogate in it is kept as an escape."""
    q = Quarantined(T0, None, "gw", "line/\x00topic", "b'{\\ud800'", "payload is not JSON")
    result = await writer.write(rows_for(ids, 3), [q])
    assert result.inserted == 3 and result.rejected == []
    with psycopg.connect(migrated_url) as conn:
        kept = conn.execute(
            "SELECT time, tag_id, source, address, row_repr, reason FROM rejected_readings"
        ).fetchall()
    assert kept == [(T0, None, "gw", "line/\\x00topic", "b'{\\ud800'", "payload is not JSON")]


async def test_a_fault_nobody_foresaw_is_isolated_to_its_row(
    writer: BatchWriter, ids: list[int], migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception no check anticipated (injected into COPY for one value) must not stop the
    writer: the batch is halved down to the row at fault, which is rejected with the error;
    every other row is stored, once."""
    real_copy = BatchWriter._copy

    async def copy(self: BatchWriter, table: str, rows: Sequence[Sequence[object]]) -> None:
        if any(r[2] == 13.0 for r in rows):
            raise RuntimeError("injected fault")
        await real_copy(self, table, rows)

    monkeypatch.setattr(BatchWriter, "_copy", copy)
    batch = rows_for(ids, 40)
    result = await writer.write(batch)
    assert (result.inserted, [(r.index, r.reason) for r in result.rejected]) == (
        39,
        [(13, "cannot be written: RuntimeError('injected fault')")],
    )
    assert len(stored(migrated_url)) == 39
