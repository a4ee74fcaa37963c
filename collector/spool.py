"""Store-and-forward spool: batches the database could not take, durable on local disk.

SQLite in WAL mode with `synchronous=FULL`: `append` returns only after the batch is fsync'd, so
a reading acknowledged to its source (an MQTT PUBACK) survives a crash or power loss. Batches
are deleted only after the database committed them (the writer is idempotent on (tag_id, time)).
Refused input (`Rejected`) rides in the batch it came with, as durable as the rows.

Rows keep the tag's key (`machine.name`), not its database id: a collector can spool before it
ever reached the database, and a spool outlives a config change. The budget and its policy
(`spool_on_full`): docs/collector.md.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, NamedTuple

from collector.rows import Rejected, Row

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


class SpoolError(Exception):
    """The spool cannot be opened: the collector does not start (it could store nothing)."""


class SpoolInUse(SpoolError):
    """Another process holds the spool directory: a second collector of the same config."""


def _hold(directory: Path) -> IO[str]:
    """Lock the directory's `spool.lock` for this process (released when the file is closed or
    the process ends, SIGKILL included), noting who holds it; SpoolInUse naming the holder when
    another process does.

    Two collectors on one spool would replay each other's batches and count them wrong, and
    usually read the same PLCs (MQTT: one client id, each connect throwing the other off)."""
    lock = open(directory / "spool.lock", "a+")  # noqa: SIM115  # held until Spool.close()
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read(200).strip() or "a process"
        lock.close()
        raise SpoolInUse(
            f"the spool {directory} is in use by another collector ({holder}): stop that one "
            "first (systemctl stop shopfloor), or give this one its own "
            "settings.collector.spool_dir"
        ) from None
    since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    lock.truncate(0)
    lock.write(f"pid {os.getpid()} on {socket.gethostname()} since {since}\n")
    lock.flush()
    return lock


@dataclass(frozen=True)
class SpoolStats:
    batches: int
    rows: int
    bytes: int
    oldest_created: float | None  # unix time the oldest batch was spooled
    dropped_rows: int
    full: bool  # the last append met the budget (an alarm while true)


class Batch(NamedTuple):
    rows: list[Row]
    rejected: list[Rejected]


def encode(rows: list[Row], rejected: Sequence[Rejected] = ()) -> bytes:
    """Compact JSON: keys listed once, times as integer microseconds since the epoch."""
    keys: dict[str, int] = {}
    out = []
    for t, key, value, quality, text in rows:
        k = keys.setdefault(key, len(keys))
        out.append([(t - _EPOCH) // _US, k, value, quality, text])
    doc: dict[str, object] = {"k": list(keys), "r": out}
    if rejected:
        doc["x"] = [[_micros(x.time), *x[1:]] for x in rejected]
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(payload: bytes) -> Batch:
    doc = json.loads(payload)
    keys = doc["k"]
    rows = [(_EPOCH + us * _US, keys[k], v, q, text) for us, k, v, q, text in doc["r"]]
    return Batch(rows, [Rejected(_time(us), *rest) for us, *rest in doc.get("x", ())])


def _micros(t: dt.datetime | None) -> int | None:
    return None if t is None else (t - _EPOCH) // _US


def _time(us: int | None) -> dt.datetime | None:
    """A refused input's time may lie where a datetime cannot follow (it was refused for it)."""
    try:
        return None if us is None else _EPOCH + us * _US
    except OverflowError:
        return None


class Spool:
    """One SQLite file; not thread-safe: the pipeline calls it from one worker thread."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        on_full: Literal["block", "drop_oldest"] = "block",
    ) -> None:
        self.path = directory / "spool.sqlite3"
        self.max_bytes = max_bytes
        self.on_full = on_full
        self.dropped_rows = 0
        self.full = False
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock = _hold(directory)
        except OSError as exc:
            raise SpoolError(f"the spool directory {directory} cannot be used: {exc}") from exc
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "created REAL NOT NULL, nrows INTEGER NOT NULL, nbytes INTEGER NOT NULL, "
                "payload BLOB NOT NULL)"
            )
            self._rows, self._bytes, self._batches, self._oldest = self._db.execute(
                "SELECT coalesce(sum(nrows), 0), coalesce(sum(nbytes), 0), count(*), "
                "min(created) FROM batches"
            ).fetchone()
        except (OSError, sqlite3.Error) as exc:
            self._lock.close()
            raise SpoolError(
                f"the spool {self.path} cannot be used: {exc} (a damaged file can be moved "
                "aside: the collector then starts with an empty spool, without its batches)"
            ) from exc

    def close(self) -> None:
        self._db.close()
        self._lock.close()

    def __len__(self) -> int:
        return self._batches

    def append(self, rows: list[Row], rejected: Sequence[Rejected] = ()) -> bool:
        """Store one batch durably; False when the budget refuses it (policy `block`)."""
        payload = encode(rows, rejected)
        count = len(rows) + len(rejected)
        if self._bytes + len(payload) > self.max_bytes:
            if not self.full:
                log.error(
                    "spool full: %d bytes of %d budget (%s)",
                    self._bytes,
                    self.max_bytes,
                    "refusing new readings" if self.on_full == "block" else "dropping oldest",
                )
            self.full = True
            if self.on_full == "block" or not self._make_room(len(payload)):
                return False
        now = time.time()
        self._db.execute(
            "INSERT INTO batches (created, nrows, nbytes, payload) VALUES (?, ?, ?, ?)",
            (now, count, len(payload), payload),
        )
        if self._oldest is None:
            self._oldest = now
        self._rows += count
        self._bytes += len(payload)
        self._batches += 1
        return True

    def _make_room(self, needed: int) -> bool:
        while self._batches and self._bytes + needed > self.max_bytes:
            bid, nrows = self._db.execute(
                "SELECT id, nrows FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
            self.delete(bid)
            self.dropped_rows += nrows
            log.error("spool full: dropped the oldest batch (%d readings)", nrows)
        self.full = True  # the alarm stays on while we drop: only a replay clears it
        return self._bytes + needed <= self.max_bytes

    def oldest(self) -> tuple[int, Batch] | None:
        row = self._db.execute("SELECT id, payload FROM batches ORDER BY id LIMIT 1").fetchone()
        return None if row is None else (row[0], decode(row[1]))

    def delete(self, batch_id: int) -> None:
        got = self._db.execute(
            "DELETE FROM batches WHERE id = ? RETURNING nrows, nbytes", (batch_id,)
        ).fetchone()
        if got is not None:
            self._rows -= got[0]
            self._bytes -= got[1]
            self._batches -= 1
            self._oldest = self._db.execute("SELECT min(created) FROM batches").fetchone()[0]
        if self._bytes <= self.max_bytes * 0.9:
            self.full = False

    def stats(self) -> SpoolStats:
        """From counters kept in memory: safe to call from the event loop while a worker
        thread appends."""
        return SpoolStats(
            self._batches, self._rows, self._bytes, self._oldest, self.dropped_rows, self.full
        )
