"""The batch writer: readings into the hypertable with binary COPY, exactly once.

Fast path: binary COPY straight into `readings` inside a savepoint; that is raw COPY speed. A
replayed batch (a spool replay after a crash, say) hits the unique (tag_id, time) index: then the
savepoint is rolled back and the batch goes through a temp staging table with
`INSERT … ON CONFLICT DO NOTHING`, so rows already stored are skipped and none is duplicated.

Bad rows: rows that cannot be readings (naive or missing timestamp, a time outside the span the
product handles, unknown tag id, text with a NUL or that is not valid Unicode, quality out of
range) are found before COPY (`row_problems`, the one rule, which also words the reason); rows
the server or the encoder refuses anyway are isolated by bisecting the batch. Either way the GOOD
rows of the batch are written and each bad row is stored in `rejected_readings` with its reason,
in the same transaction: nothing is dropped silently.
Input refused before it became a row (a malformed payload, an implausible reading time) rides
with a batch as `Quarantined` and is stored there too.

Rollups: in the same transaction the batch lowers `rollup_state.dirty_since` of each machine it
has KPI readings for (storage.rollups recomputes from there), one small statement per batch with
KPI readings; a batch of measurements only marks nothing and sends nothing.

Errors the caller must tell apart (they carry `retriable`):
    WriteError
    ├── TransientWriteError   connection lost, server shutting down, disk full: retry the batch
    └── PermanentWriteError   schema missing, permissions: retrying will not help
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg
from psycopg import errors as pgerr

from kpi.limits import TIME_MAX, TIME_MIN, outside_span
from storage.link import LINK_OPTIONS

log = logging.getLogger(__name__)

SMALLINT_MIN, SMALLINT_MAX = -32768, 32767
MAX_DOUBLE_INT = 2**1023

# Readings older than this when stored are late: results of windows that ended before them may
# change (rollup_state.late_seq, read by the API's result cache).
LATE_AFTER_S = 60

# One statement per batch: the earliest time per tag, folded per machine into rollup_state.
MARK_DIRTY_SQL = f"""
INSERT INTO rollup_state AS r (machine_id, dirty_since, dirty_seq, late_seq)
SELECT t.machine_id, min(b.time), 1,
       (min(b.time) < now() - interval '{LATE_AFTER_S} seconds')::int
FROM unnest(%s::int[], %s::timestamptz[]) AS b (tag_id, time)
JOIN tags t ON t.id = b.tag_id
WHERE t.signal <> 'measurement'
GROUP BY t.machine_id
ORDER BY t.machine_id
ON CONFLICT (machine_id) DO UPDATE
SET dirty_since = LEAST(r.dirty_since, EXCLUDED.dirty_since), dirty_seq = r.dirty_seq + 1,
    late_seq = r.late_seq + EXCLUDED.late_seq
"""

# SQLSTATE classes where trying again later can succeed (PostgreSQL appendix A).
TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57", "58", "40")


class Quarantined(NamedTuple):
    """Input refused before it became a row, kept in rejected_readings with the batch."""

    time: dt.datetime | None  # its own time, or when it arrived
    tag_id: int | None
    source: str | None
    address: str | None  # topic, node id or register: where the source put it
    what: str  # a printable rendering of what was refused
    reason: str


class ReadingRow(NamedTuple):
    """One reading as stored: the columns of `readings`, in COPY order."""

    time: dt.datetime
    tag_id: int
    value: float | None
    quality: int = 0
    text_value: str | None = None


# What `BatchWriter.write` takes per row: a ReadingRow, or a plain tuple of the same fields (the
# collector's DatabaseSink builds those, no constructor call per reading). Rows of any other
# shape are judged at run time (`row_problems`) and rejected with the reason.
ReadingTuple = tuple[dt.datetime, int, float | None, int, str | None]

COPY_COLUMNS = ", ".join(ReadingRow._fields)
COPY_TYPES = ["timestamptz", "int4", "float8", "int2", "text"]
UNKNOWN_TAG = "unknown tag_id"


class WriteError(Exception):
    retriable = False


class TransientWriteError(WriteError):
    retriable = True


class PermanentWriteError(WriteError):
    retriable = False


@dataclass(frozen=True)
class RejectedRow:
    index: int  # position in the batch handed to write()
    row: tuple[object, ...]
    reason: str


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    used_staging: bool = False


def text_problem(text: object) -> str | None:
    """Why a text value cannot be stored (PostgreSQL text is UTF-8 without NUL), or None."""
    if not isinstance(text, str):
        return f"text_value is {type(text).__name__}, not str"
    if "\x00" in text:
        return "text_value contains a NUL byte"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            return f"text_value is not valid Unicode ({exc.reason} at position {exc.start})"
    return None


def row_problems(rows: Sequence[ReadingTuple], known: Container[int]) -> dict[int, str]:
    """Why each row that cannot be a reading cannot be one, by position in `rows`: the one rule.

    A row may be anything at run time (spooled input, a caller's bug): each field is judged once,
    in this order, and the first problem is the reason. One loop over the batch, no call per
    row; the `is` tests only take a UTC datetime and a float past `isinstance` and `utcoffset()`.
    """
    datetime, utc = dt.datetime, dt.UTC
    bad: dict[int, str] = {}
    for i, row in enumerate(rows):
        try:
            time, tag_id, value, quality, text = row
        except (TypeError, ValueError):
            bad[i] = f"expected 5 fields ({COPY_COLUMNS}), got {len(row)}"
            continue
        if time.__class__ is not datetime or time.tzinfo is not utc:
            if not isinstance(time, datetime):
                bad[i] = f"time is {type(time).__name__}, not a datetime"
                continue
            if time.utcoffset() is None:
                bad[i] = "time has no time zone (naive datetimes are ambiguous)"
                continue
        if not TIME_MIN <= time < TIME_MAX:
            bad[i] = outside_span(time)
            continue
        if tag_id not in known:
            bad[i] = f"{UNKNOWN_TAG} {tag_id!r}"
            continue
        if value is not None and value.__class__ is not float and not isinstance(value, float):
            if isinstance(value, bool) or not isinstance(value, int):
                bad[i] = f"value is {type(value).__name__}, not a number"
                continue
            if abs(value) > MAX_DOUBLE_INT:
                bad[i] = "value is too large for double precision"
                continue
        if not (isinstance(quality, int) and SMALLINT_MIN <= quality <= SMALLINT_MAX):
            bad[i] = f"quality {quality!r} is not a smallint"
            continue
        if text is not None:
            problem = text_problem(text)
            if problem is not None:
                bad[i] = problem
    return bad


def classify(exc: BaseException) -> type[WriteError] | None:
    """TransientWriteError / PermanentWriteError for batch-level errors; None for row errors."""
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, pgerr.QueryCanceled):
        return TransientWriteError
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith(TRANSIENT_SQLSTATE_PREFIXES):
        return TransientWriteError
    if isinstance(exc, psycopg.InterfaceError):
        return TransientWriteError  # connection closed under us
    if sqlstate.startswith(("22", "23")) and not isinstance(exc, pgerr.UniqueViolation):
        return None  # bad data in some row: isolate it
    return PermanentWriteError


class BatchWriter:
    """Writes batches on one autocommit connection (the collector's writer task owns one)."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        if not conn.autocommit:
            raise ValueError(
                "BatchWriter needs an autocommit connection: it opens its own transactions"
            )
        self._conn = conn
        self._known: set[int] = set()
        self._kpi: set[int] = set()  # tags that feed rollups (signal other than measurement)

    @classmethod
    async def connect(cls, url: str) -> BatchWriter:
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True, **LINK_OPTIONS)
        except psycopg.Error as exc:
            raise (classify(exc) or PermanentWriteError)(str(exc)) from exc
        writer = cls(conn)
        await writer.refresh_tags()
        return writer

    async def close(self) -> None:
        await self._conn.close()

    async def refresh_tags(self) -> None:
        """Tag ids and which of them feed KPIs: loaded on connect and when a batch names an id
        not seen yet. (A plant sync that turns an existing measurement into a KPI tag while this
        writer runs takes effect from the next refresh; the collector syncs before connecting.)"""
        async with self._conn.cursor() as cur:
            await cur.execute("SELECT id, signal <> 'measurement' FROM tags")
            tags = await cur.fetchall()
        self._known = {tag_id for tag_id, _ in tags}
        self._kpi = {tag_id for tag_id, kpi in tags if kpi}

    async def write(
        self, rows: Sequence[ReadingTuple], quarantined: Sequence[Quarantined] = ()
    ) -> WriteResult:
        """Write one batch (and what was quarantined with it) in one transaction.
        Raises TransientWriteError/PermanentWriteError; nothing else."""
        try:
            result = await self._write_or_isolate(rows, quarantined)
        except WriteError:
            raise
        except (psycopg.Error, OSError) as exc:
            kind = classify(exc) or PermanentWriteError
            raise kind(f"{type(exc).__name__}: {exc}".strip()) from exc
        if result.rejected:
            log.warning(
                "batch: %d rows rejected (stored in rejected_readings), first: row %d: %s",
                len(result.rejected),
                result.rejected[0].index,
                result.rejected[0].reason,
            )
        return result

    async def _write_or_isolate(
        self, rows: Sequence[ReadingTuple], quarantined: Sequence[Quarantined]
    ) -> WriteResult:
        try:
            return await self._write(rows, quarantined)
        except (WriteError, psycopg.Error, OSError):
            raise
        except Exception as exc:  # nothing foresaw it: it must not stop the writer
            if self._conn.broken:
                raise TransientWriteError(f"connection broken: {exc!r}") from exc
            log.error(
                "writing %d rows failed unexpectedly; isolating the rows at fault",
                len(rows),
                exc_info=exc,
            )
            return await self._isolate(rows, quarantined, exc)

    async def _write(
        self, rows: Sequence[ReadingTuple], quarantined: Sequence[Quarantined]
    ) -> WriteResult:
        result = WriteResult()
        if not rows and not quarantined:
            return result
        good, index = await self._screen(rows, result)
        async with self._conn.transaction():
            await self._write_good(good, index, result)
            if result.rejected or quarantined:
                await self._store_rejected(result.rejected, quarantined)
            await self._mark_dirty(good, index, result)
        return result

    async def _isolate(
        self, rows: Sequence[ReadingTuple], quarantined: Sequence[Quarantined], exc: Exception
    ) -> WriteResult:
        """After an unforeseen failure: the batch in halves, each its own transaction (writes
        are idempotent), down to the single rows that fail, which are rejected with the error.
        Still failing with no row left to blame raises PermanentWriteError."""
        if len(rows) <= 1:
            row = [RejectedRow(0, tuple(r), f"cannot be written: {exc!r}") for r in rows]
            try:
                async with self._conn.transaction():
                    await self._store_rejected(row, quarantined)
            except Exception as again:
                raise PermanentWriteError(f"cannot store rejected input: {again!r}") from again
            return WriteResult(rejected=row)
        mid = len(rows) // 2
        result = WriteResult()
        for offset, part, extra in ((0, rows[:mid], quarantined), (mid, rows[mid:], ())):
            got = await self._write_or_isolate(part, extra)
            result.inserted += got.inserted
            result.duplicates += got.duplicates
            result.used_staging |= got.used_staging
            result.rejected += [
                RejectedRow(r.index + offset, r.row, r.reason) for r in got.rejected
            ]
        return result

    async def _screen(
        self, rows: Sequence[ReadingTuple], result: WriteResult
    ) -> tuple[Sequence[ReadingTuple], Sequence[int]]:
        """The rows fit to COPY and their positions in the batch (bad ones go to `result`).
        When every row passes, the batch itself is returned with `range` positions: nothing is
        copied. Rows of tag ids not seen yet are judged again after a refresh of the tags."""
        bad = row_problems(rows, self._known)
        unknown = [i for i, p in bad.items() if p.startswith(UNKNOWN_TAG)]
        if unknown:
            await self.refresh_tags()  # tags added since we last looked
            again = row_problems([rows[i] for i in unknown], self._known)
            for k, i in enumerate(unknown):
                if k in again:
                    bad[i] = again[k]
                else:
                    del bad[i]
        if not bad:
            return rows, range(len(rows))
        result.rejected.extend(RejectedRow(i, tuple(rows[i]), bad[i]) for i in sorted(bad))
        index = [i for i in range(len(rows)) if i not in bad]
        return [rows[i] for i in index], index

    async def _copy(self, table: str, rows: Sequence[ReadingTuple]) -> None:
        sql = f"COPY {table} ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        async with self._conn.cursor() as cur, cur.copy(sql) as cp:
            cp.set_types(COPY_TYPES)
            for row in rows:
                await cp.write_row(row)

    async def _write_good(
        self, rows: Sequence[ReadingTuple], index: Sequence[int], result: WriteResult
    ) -> None:
        """COPY `rows` (at batch positions `index`) in a savepoint; when some are stored already
        (a replay) through the staging table instead; rows the server or the encoder refuses are
        found by bisection and rejected, the rest stored."""
        if not rows:
            return
        for staged in (False, True):
            try:
                async with self._conn.transaction():  # savepoint: a refusal undoes this part only
                    inserted = await self._stage(rows) if staged else await self._copy_in(rows)
            except pgerr.UniqueViolation:
                continue  # some rows are stored already: the replay path
            except psycopg.Error as exc:
                if classify(exc) is not None:
                    raise
                reason = _server_reason(exc)
            except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
                # A value the COPY encoder cannot turn into bytes (the screen missed it): the
                # copy was aborted and its savepoint rolled back; find the row as for a refusal.
                if self._conn.broken:
                    raise TransientWriteError(f"connection broken: {exc!r}") from exc
                reason = f"cannot be encoded: {type(exc).__name__}: {exc}"
            else:
                result.inserted += inserted
                result.duplicates += len(rows) - inserted
                result.used_staging |= staged
                return
            break
        if len(rows) == 1:
            result.rejected.append(RejectedRow(index[0], tuple(rows[0]), reason))
            return
        mid = len(rows) // 2
        await self._write_good(rows[:mid], index[:mid], result)
        await self._write_good(rows[mid:], index[mid:], result)

    async def _copy_in(self, rows: Sequence[ReadingTuple]) -> int:
        await self._copy("readings", rows)
        return len(rows)

    async def _stage(self, rows: Sequence[ReadingTuple]) -> int:
        """Rows through a temp table, `ON CONFLICT DO NOTHING`: how many were new."""
        async with self._conn.cursor() as cur:
            # Every time: made inside a savepoint, the table is gone again if that rolls back.
            await cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS readings_stage "
                "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            await cur.execute("TRUNCATE readings_stage")
        await self._copy("readings_stage", rows)
        async with self._conn.cursor() as cur:
            # DISTINCT ON: a batch may itself hold the same (tag_id, time) twice; first one wins.
            await cur.execute(
                f"INSERT INTO readings ({COPY_COLUMNS}) "
                f"SELECT DISTINCT ON (tag_id, time) {COPY_COLUMNS} FROM readings_stage "
                "ON CONFLICT (tag_id, time) DO NOTHING"
            )
            return cur.rowcount

    async def _mark_dirty(
        self, rows: Sequence[ReadingTuple], index: Sequence[int], result: WriteResult
    ) -> None:
        """Lower rollup_state.dirty_since to each machine's earliest reading of the batch, in the
        batch's transaction, so the rollups never miss readings that arrive late (see
        storage.rollups). Measurement tags do not feed rollups: only rows of KPI tags are looked
        at and sent, and a batch without any sends no statement."""
        kpi = self._kpi
        if not kpi:
            return
        if result.rejected:  # rows the server refused are not stored: they mark nothing
            refused = {r.index for r in result.rejected}
            rows = [row for i, row in zip(index, rows, strict=True) if i not in refused]
        first: dict[int, dt.datetime] = {}
        for row in rows:
            tag = row[1]
            if tag in kpi:
                time = row[0]
                seen = first.get(tag)
                if seen is None or time < seen:
                    first[tag] = time
        if not first:
            return
        async with self._conn.cursor() as cur:
            await cur.execute(MARK_DIRTY_SQL, (list(first), list(first.values())))

    async def _store_rejected(
        self, rejected: Sequence[RejectedRow], quarantined: Sequence[Quarantined]
    ) -> None:
        records: list[tuple[object, ...]] = [
            (
                r.row[0] if _is_aware(r.row[0]) else None,
                r.row[1] if isinstance(r.row[1], int) and abs(r.row[1]) < 2**31 else None,
                None,
                None,
                repr(r.row),
                r.reason,
            )
            for r in rejected
        ]
        records += [
            (q.time, q.tag_id, _printable(q.source), _printable(q.address), q.what, q.reason)
            for q in quarantined
        ]
        async with self._conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO rejected_readings (time, tag_id, source, address, row_repr, reason) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [tuple(_printable(v) if isinstance(v, str) else v for v in rec) for rec in records],
            )


def _printable(text: str | None) -> str | None:
    """Text PostgreSQL takes: no NUL, valid UTF-8 (what cannot be is written as escapes)."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()


def _is_aware(value: object) -> bool:
    return isinstance(value, dt.datetime) and value.utcoffset() is not None


def _server_reason(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag else None
    return f"server refused: {primary or exc} (SQLSTATE {getattr(exc, 'sqlstate', '?')})"
