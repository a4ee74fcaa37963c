"""The one contract between adapters and the collector.

An adapter is started with a source config and a sink; it calls the sink with batches of
`Reading`s until it is stopped. It never raises out of `run()` for transient trouble (the server
went away, a timeout): it reconnects with backoff and reports through `status`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from itertools import repeat
from typing import NamedTuple, Protocol


class Quality(IntEnum):
    """Coarse quality stored beside each value (readings.quality, smallint).

    OPC UA adapters store the top 16 bits of the StatusCode instead when it is not plain
    Good/Uncertain/Bad, so nothing the server said is lost; see adapters/opcua.
    """

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class Reading(NamedTuple):
    """One value of one address.

    A NamedTuple rather than a frozen dataclass: every reading of every adapter is one, a tuple
    is built faster (docs/benchmarks.md) and the router unpacks it in one step. Immutable,
    hashable, compared by value; it also equals a plain tuple of its fields (nothing relies on it).
    """

    source: str
    address: str  # the tag's `reading_address`, so the collector can map it to a tag id
    ts: dt.datetime  # timezone-aware UTC
    value: float | None  # numbers and booleans as float; None when only text or bad quality
    quality: int = Quality.GOOD
    text: str | None = None  # string values (Modbus STRING, OPC UA String)


_from_fields = partial(tuple.__new__, Reading)  # a Reading from a tuple of its 6 fields, in C


def good_readings(
    source: str,
    addresses: Sequence[str],
    stamps: Iterable[dt.datetime],
    values: Sequence[float | None],
    texts: Iterable[str | None] | None = None,
) -> list[Reading]:
    """GOOD readings, one per address, from columns (`itertools.repeat` for a shared stamp).

    Built without a Python call per reading: adapters make one per register, node or payload
    field, so this is their hottest line."""
    if len(addresses) != len(values):
        raise ValueError(f"{len(addresses)} addresses but {len(values)} values")
    fields: Iterable[tuple] = zip(
        repeat(source),
        addresses,
        stamps,
        values,
        repeat(Quality.GOOD),
        repeat(None) if texts is None else texts,
    )
    return list(map(_from_fields, fields))


class Malformed(NamedTuple):
    """A message that gave no reading: kept with its reason (quarantined), never retried."""

    source: str
    address: str  # where it came from: the MQTT topic
    ts: dt.datetime  # when it arrived
    payload: bytes
    reason: str


# The collector's side: accepts a batch; awaiting it is the backpressure. For MQTT QoS>0 the
# adapter acknowledges the messages only after this returns (the batch is durable by then).
ReadingSink = Callable[[Sequence[Reading]], Awaitable[None]]
# Where malformed messages go, durable like readings before they are acknowledged.
MalformedSink = Callable[[Sequence[Malformed]], Awaitable[None]]


@dataclass
class SourceStatus:
    """Health of one source, as /healthz reports it."""

    source: str
    protocol: str
    connected: bool = False
    last_reading: dt.datetime | None = None
    readings: int = 0
    errors: int = 0
    last_error: str | None = None
    reconnects: int = 0
    malformed: int = 0
    # tag key -> messages for the tag that lacked its field (MQTT's partial JSON payloads)
    missing_fields: dict[str, int] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)


class Adapter(Protocol):
    """Driven the same way for every protocol: `run()` in a task, `stop()` to end it."""

    status: SourceStatus

    async def run(self) -> None:
        """Connect, deliver readings to the sink, reconnect on failure; return after stop()."""

    async def stop(self) -> None:
        """Stop and release connections; pending acknowledgements are flushed first."""
