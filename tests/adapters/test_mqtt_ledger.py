"""The acknowledgement ledger without a broker: in-order acks, and what a failure keeps per QoS."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.mqtt.ledger import Ledger
from adapters.mqtt.transport import Message

T0 = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def msg(mid: int, qos: int = 1, generation: int = 1) -> Message:
    return Message(f"t/{mid}", str(mid).encode(), qos, mid, generation, T0)


def mids(messages: list[Message]) -> list[int]:
    return [m.mid for m in messages]


def test_acks_follow_arrival_order_whatever_order_calls_return_in() -> None:
    ledger = Ledger(max_inflight=4, max_batch=10)
    batches = [ledger.open([msg(i)], 1, call=True) for i in range(1, 5)]
    assert not ledger.room  # a fifth waits for a slot
    for b in reversed(batches[1:]):  # 4, 3, 2 return
        ledger.finish(b)
    assert ledger.acknowledged() == [] and not ledger.room  # returned, still holding slots
    ledger.finish(batches[0])
    assert ledger.acknowledged() == batches and ledger.room and not ledger.inflight


def test_a_batch_without_a_call_waits_only_for_the_earlier_ones() -> None:
    ledger = Ledger(max_inflight=4, max_batch=10)
    first = ledger.open([msg(1)], 1, call=True)
    nothing = ledger.open([msg(2)], 0, call=False)  # e.g. only unmatched topics
    assert ledger.acknowledged() == []
    ledger.finish(first)
    assert ledger.acknowledged() == [first, nothing]


def test_a_failure_stops_acks_from_the_failed_batch_on_and_keeps_what_qos_requires() -> None:
    ledger = Ledger(max_inflight=4, max_batch=10)
    ledger.retry = [held := msg(9, qos=0)]  # kept from before: offered after the kept below
    ok = ledger.open([msg(1)], 1, call=True)
    failed = ledger.open([msg(20, 0), msg(21, 1), msg(22, 2)], 3, call=True)
    stored = ledger.open([msg(30, 0), msg(31, 1), msg(32, 2)], 3, call=True)
    failed_too = ledger.open([msg(40, 2)], 1, call=True)
    ledger.finish(failed, RuntimeError("database is away"))
    assert ledger.failed
    for b in (stored, ok, failed_too):
        ledger.finish(b, RuntimeError("again") if b is failed_too else None)
    assert ledger.acknowledged() == [ok]  # before the failed one: acknowledged as ever
    failure = ledger.settle()
    assert [str(e) for e in failure.errors] == ["database is away", "again"]
    assert (failure.batches, failure.messages, failure.stored) == (3, 7, 3)
    # QoS 1 dropped (the broker redelivers it); QoS 0 and 2 of failed batches kept; QoS 2 of
    # the stored batch kept only for its PUBCOMP, marked stored; QoS 0 of it done.
    assert mids(ledger.retry) == [20, 22, 32, 40, 9]
    assert [m.stored for m in ledger.retry] == [False, False, True, False, False]
    assert not ledger.inflight and not ledger.failed and held in ledger.retry


def test_kept_messages_come_back_first_in_batches_of_max_batch() -> None:
    ledger = Ledger(max_inflight=4, max_batch=2)
    ledger.keep([msg(1, 0), msg(2, 1), msg(3, 2), msg(4, 2), msg(5, 0)])  # QoS 1: not kept
    assert mids(ledger.next_retry()) == [1, 3]
    assert mids(ledger.next_retry()) == [4, 5]
    assert ledger.next_retry() == [] and ledger.retry == []


def test_at_stop_only_what_the_broker_will_not_send_again() -> None:
    ledger = Ledger(max_inflight=4, max_batch=10)
    done = msg(2, 2)
    done.stored = True  # stored already: waits only for its PUBCOMP, on the next session
    ledger.retry = [msg(1, 2), done, msg(3, 0)]
    queued = [msg(4, 1), msg(5, 2), msg(6, 0)]
    assert mids(ledger.unrepeatable(queued)) == [1, 3, 5, 6]
    assert ledger.retry == []


@pytest.mark.parametrize(
    ("qos", "generation", "acked"),
    [
        (0, 2, False),  # nothing to acknowledge
        (1, 2, True),
        (1, 1, False),  # an earlier connection's: its redelivered copy is acknowledged instead
        (2, 2, True),
        (2, 1, True),  # released by the broker, never redelivered: PUBCOMP on any connection
    ],
)
def test_what_is_acknowledged_on_which_connection(qos: int, generation: int, acked: bool) -> None:
    m = msg(1, qos, generation)
    assert Ledger.acks([m], generation=2) == ([m] if acked else [])
