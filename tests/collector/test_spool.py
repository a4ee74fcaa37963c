"""The spool: durable across reopen, replay order, the size budget and its two policies."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from collector.rows import Rejected, Row
from collector.spool import Spool, SpoolInUse, decode, encode
from tests.api.plant import PLANT
from tests.services import run_shopfloor

T0 = dt.datetime(2026, 3, 2, 6, 0, 0, 123456, tzinfo=dt.UTC)


def rows(n: int, start: int = 0) -> list[Row]:
    return [
        (T0 + dt.timedelta(seconds=start + i), f"m{i % 3}.state", float(i), i % 2, None)
        for i in range(n)
    ]


def test_encoding_round_trips_exactly() -> None:
    batch: list[Row] = [
        (T0, "filler.state", 1.0, 0, None),
        (T0 + dt.timedelta(microseconds=1), "filler.text", None, 2, 'quote " and ü'),
        (T0 - dt.timedelta(days=400), "filler.state", -1.5e300, -32768, None),
    ]
    assert decode(encode(batch)) == (batch, [])


def test_refused_input_rides_with_its_batch_and_counts(tmp_path: Path) -> None:
    """Refused input is as durable as rows and counts like them; a time no datetime can hold
    comes back as None."""
    rejected = [
        Rejected(T0, "filler.text", "gw", "line/filler", "'\\ud800'", "not valid Unicode"),
        Rejected(None, None, "gw", "line/x", "b'{'", "payload is not JSON"),
    ]
    assert decode(encode(rows(2), rejected)) == (rows(2), rejected)
    spool = Spool(tmp_path, max_bytes=10_000_000)
    assert spool.append(rows(2), rejected)
    assert spool.stats().rows == 4
    far = json.dumps({"k": [], "r": [], "x": [[10**20, None, "gw", "t", "x", "why"]]})
    assert decode(far.encode()).rejected == [Rejected(None, None, "gw", "t", "x", "why")]


def test_batches_survive_reopen_and_replay_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000_000)
    assert spool.append(rows(5)) and spool.append(rows(3, start=100))
    spool.close()

    again = Spool(tmp_path, max_bytes=10_000_000)
    assert (again.stats().batches, again.stats().rows) == (2, 8)
    first = again.oldest()
    assert first is not None and first[1].rows == rows(5)
    again.delete(first[0])
    second = again.oldest()
    assert second is not None and second[1].rows == rows(3, start=100)
    again.delete(second[0])
    stats = again.stats()
    assert (stats.batches, stats.rows, stats.bytes, stats.oldest_created) == (0, 0, 0, None)
    assert again.oldest() is None


def test_block_policy_refuses_at_the_budget_and_raises_the_alarm(tmp_path: Path) -> None:
    size = len(encode(rows(50)))
    spool = Spool(tmp_path, max_bytes=2 * size, on_full="block")
    assert spool.append(rows(50)) and spool.append(rows(50, start=50))
    assert not spool.full
    assert spool.append(rows(50, start=100)) is False  # refused: the caller keeps it
    stats = spool.stats()
    assert (stats.batches, stats.rows, stats.full, stats.dropped_rows) == (2, 100, True, 0)
    oldest = spool.oldest()
    assert oldest is not None
    spool.delete(oldest[0])  # replayed: room again, alarm off
    assert not spool.stats().full
    assert spool.append(rows(50, start=100))


def test_drop_oldest_policy_makes_room_and_counts_the_loss(tmp_path: Path) -> None:
    size = len(encode(rows(50)))
    spool = Spool(tmp_path, max_bytes=2 * size, on_full="drop_oldest")
    for k in range(3):
        assert spool.append(rows(50, start=50 * k))
    stats = spool.stats()
    assert (stats.batches, stats.rows, stats.dropped_rows, stats.full) == (2, 100, 50, True)
    oldest = spool.oldest()
    assert oldest is not None and oldest[1].rows == rows(50, start=50)  # the first batch went


def collect(tmp_path: Path, spool: Path) -> subprocess.CompletedProcess[str]:
    """`shopfloor collect` of the test plant with this spool (no database: it never gets that
    far)."""
    config = tmp_path / "plant.yaml"
    config.write_text(PLANT)
    args = ["--config", str(config), "--spool-dir", str(spool)]
    return run_shopfloor("collect", *args, "--database-url", "postgresql://127.0.0.1:1/none")


def test_a_second_collector_on_one_spool_is_refused_naming_the_first(tmp_path: Path) -> None:
    """One spool, one collector: a second `shopfloor collect` of the same config (a manual run
    beside the service) exits 1 before it reads anything, naming the process that holds it."""
    directory = tmp_path / "spool"
    held = Spool(directory, max_bytes=10**6)
    with pytest.raises(SpoolInUse, match=f"in use by another collector \\(pid {os.getpid()} on "):
        Spool(directory, max_bytes=10**6)
    done = collect(tmp_path, directory)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(
        f"shopfloor collect: the spool {directory} is in use by another collector "
        f"(pid {os.getpid()} on {socket.gethostname()} since "
    ), done.stderr
    assert done.stderr.rstrip().endswith("or give this one its own settings.collector.spool_dir")
    held.close()
    again = Spool(directory, max_bytes=10**6)  # free once closed (or its process ended)
    again.close()


def test_a_spool_that_cannot_be_used_stops_the_start_with_a_message(tmp_path: Path) -> None:
    """A spool path that is no directory, or a damaged spool file: exit 1 naming it and why,
    not a traceback."""
    done = collect(tmp_path, Path("/dev/null/spool"))
    assert (done.returncode, done.stderr) == (
        1,
        "shopfloor collect: the spool directory /dev/null/spool cannot be used: [Errno 20] Not a "
        "directory: '/dev/null/spool'\n",
    )
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "spool.sqlite3").write_bytes(b"not SQLite " * 500)
    done = collect(tmp_path, damaged)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(
        f"shopfloor collect: the spool {damaged / 'spool.sqlite3'} cannot be used: file is not a "
        "database (a damaged file can be moved aside"
    ), done.stderr
    assert (damaged / "spool.sqlite3").read_bytes() == b"not SQLite " * 500  # left as it was
    (damaged / "spool.sqlite3").rename(damaged / "spool.sqlite3.damaged")  # as the message says
    Spool(damaged, max_bytes=10**6).close()  # opens: the failed open released the lock too
