"""Which MQTT messages may be acknowledged, and which are kept after a failed sink call. Pure.

Acks go in arrival order, each after the sink returned for its batch and every earlier one. From
a failed batch on nothing is acknowledged; `settle()` keeps what the broker will not send again
(docs/adapters/mqtt.md has the rules per QoS). A QoS 1 message of an earlier connection
(`generation`) is acknowledged as its redelivered copy, not itself. The caller runs the calls:
`open()` a batch as its call starts, `finish()` it when the call returned, ack the
`acknowledged()` batches (`acks()` picks the messages), and after a failure `settle()` once
every call under way has finished.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from adapters.mqtt.transport import Message


@dataclass(slots=True, eq=False)
class Batch:
    """One sink call's messages, acknowledged together."""

    messages: list[Message]
    readings: int  # what the call stores, counted once it returned
    done: bool = False  # the call returned (or there was nothing to store)
    error: BaseException | None = None  # why the call failed


class Failure(NamedTuple):
    """What `settle()` found: the failed calls' errors, of how many batches and messages."""

    errors: list[BaseException]
    batches: int
    messages: int
    stored: int  # readings of the later batches that were stored (and not acknowledged)


class Ledger:
    """Batches under way, in arrival order, and messages kept to offer again; see the module."""

    def __init__(self, *, max_inflight: int, max_batch: int) -> None:
        self.max_inflight = max_inflight
        self.max_batch = max_batch
        self.inflight: deque[Batch] = deque()
        self.retry: list[Message] = []  # offered again before any new message

    @property
    def room(self) -> bool:
        """Whether another batch may open."""
        return len(self.inflight) < self.max_inflight

    @property
    def failed(self) -> bool:
        return any(b.error is not None for b in self.inflight)

    def next_retry(self) -> list[Message]:
        """The next batch of kept messages, oldest first."""
        batch, self.retry = self.retry[: self.max_batch], self.retry[self.max_batch :]
        return batch

    def open(self, messages: list[Message], readings: int, *, call: bool) -> Batch:
        """A batch whose sink call starts now (`call`), or that has nothing to store."""
        batch = Batch(messages, readings, done=not call)
        self.inflight.append(batch)
        return batch

    def finish(self, batch: Batch, error: BaseException | None = None) -> None:
        """The batch's call returned, or raised `error`."""
        batch.done, batch.error = True, error

    def acknowledged(self) -> list[Batch]:
        """The oldest batches whose calls succeeded, in order: acknowledge them now."""
        ready = []
        while self.inflight and self.inflight[0].done and self.inflight[0].error is None:
            ready.append(self.inflight.popleft())
        return ready

    def settle(self) -> Failure:
        """After a failed call, once all calls under way returned (and `acknowledged()` took
        what came before it): keep what the broker will not send again, offered again first."""
        kept: list[Message] = []
        errors: list[BaseException] = []
        stored = 0
        for batch in self.inflight:
            if batch.error is None:  # stored: counted now, acknowledged later
                stored += batch.readings
                for m in batch.messages:
                    if m.qos == 2:
                        m.stored = True
                        kept.append(m)
            else:
                errors.append(batch.error)
                kept += [m for m in batch.messages if m.qos != 1]
        failure = Failure(
            errors, len(self.inflight), sum(len(b.messages) for b in self.inflight), stored
        )
        self.inflight.clear()
        self.retry = kept + self.retry
        return failure

    def keep(self, messages: Iterable[Message]) -> None:
        """Messages taken but never offered (the consumer stopped or failed): QoS 0 and 2 are
        kept, after the others; QoS 1 is left to the broker's redelivery."""
        self.retry += [m for m in messages if m.qos != 1]

    def unrepeatable(self, queued: Iterable[Message]) -> list[Message]:
        """At stop: the kept and `queued` QoS 0 and 2 messages not stored yet, in order, which
        the broker will not send again. Nothing is kept after this."""
        held = [m for m in [*self.retry, *queued] if m.qos != 1 and not m.stored]
        self.retry = []
        return held

    @staticmethod
    def acks(messages: Sequence[Message], generation: int) -> list[Message]:
        """Of an acknowledged batch, the messages to acknowledge on connection `generation`."""
        return [m for m in messages if m.qos == 2 or (m.qos == 1 and m.generation == generation)]
