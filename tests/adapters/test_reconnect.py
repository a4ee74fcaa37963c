"""The adapters' one reconnect policy: the doubling backoff and the failure log's levels."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.reconnect import Backoff, FailureLog, pause

log = logging.getLogger("adapters.test")


def test_backoff_doubles_up_to_its_cap_and_starts_over() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def levels(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == log.name]
    caplog.clear()
    return got


def test_warning_once_debug_while_failing_info_on_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    failures = FailureLog(log, "plc")
    failures.failed("unit 2", ConnectionError("plc: no response"))
    failures.failed("unit 2", "no response")
    failures.failed("sink", RuntimeError())  # no text: its repr
    try:
        raise KeyError("bug")
    except KeyError as exc:
        failures.failed("poll", exc, exc_info=True)  # nobody foresaw it: ERROR, traceback
        failures.failed("poll", exc, exc_info=True)
    assert [bool(r.exc_info) for r in caplog.records] == [False] * 3 + [True, False]
    assert levels(caplog) == [
        (
            logging.WARNING,
            "plc: unit 2 failing: no response (will keep trying; repeats are logged at DEBUG)",
        ),
        (logging.DEBUG, "plc: unit 2 still failing: no response"),
        (
            logging.WARNING,
            "plc: sink failing: RuntimeError() (will keep trying; repeats are logged at DEBUG)",
        ),
        (
            logging.ERROR,
            "plc: poll failing: 'bug' (will keep trying; repeats are logged at DEBUG)",
        ),
        (logging.DEBUG, "plc: poll still failing: 'bug'"),
    ]
    assert failures.failing == {"unit 2", "sink", "poll"}
    assert failures.recovered("unit 2", "poll") and not failures.recovered("unit 2")
    assert levels(caplog) == [
        (logging.INFO, "plc: unit 2 recovered"),
        (logging.INFO, "plc: poll recovered"),
    ]
    assert failures.failing == {"sink"}


def test_connections_first_again_and_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=log.name)
    failures = FailureLog(log, "gw")
    failures.connected("connection", "connected to b:1883")
    failures.connected("connection", "connected to b:1883")  # a reconnect of its own choice
    failures.failed("connection", "cannot connect")
    failures.connected("connection", "connected to b:1883")
    assert levels(caplog) == [
        (logging.DEBUG, "gw: connected to b:1883"),
        (logging.DEBUG, "gw: connected to b:1883"),
        (
            logging.WARNING,
            "gw: connection failing: cannot connect (will keep trying; repeats are "
            "logged at DEBUG)",
        ),
        (logging.INFO, "gw: connection recovered: connected to b:1883"),
    ]


async def test_pause_ends_early_on_stop() -> None:
    stop = asyncio.Event()
    short = asyncio.create_task(pause(stop, 0.05))
    long = asyncio.create_task(pause(stop, 30))
    await asyncio.wait_for(short, 5)  # its time passed: it returned without a stop
    assert not long.done() and not stop.is_set()
    stop.set()
    await asyncio.wait_for(long, 5)  # a hang guard: the stop ends it long before its 30 s
