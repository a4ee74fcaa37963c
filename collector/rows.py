"""What the ingest path passes on: an adapter's `Reading` (adapters.base: source, address, …)
becomes a `Row` (its tag's key) in the router, and a `DbRow` (the tag's database id) in the
database sink; what was refused on the way is `Rejected`, kept with its reason
(rejected_readings), never dropped silently.

Row and DbRow are plain tuples, named here as types: the router and the sink build one per
reading in a comprehension, where a NamedTuple's constructor would cost a call each.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

# (time, tag key `machine.name`, value, quality, text): the spool stores exactly this.
Row = tuple[dt.datetime, str, float | None, int, str | None]
# (time, tag id, value, quality, text): a Row with its key resolved, as the batch writer takes it.
DbRow = tuple[dt.datetime, int, float | None, int, str | None]

WHAT_MAX = 2000  # characters of a refused payload or row kept in rejected_readings


class Rejected(NamedTuple):
    """Input refused before it became a row: a malformed payload, an implausible reading."""

    time: dt.datetime | None  # the reading's own time, or when the payload arrived
    key: str | None  # the tag key, when it was a reading of a known tag
    source: str
    address: str  # topic, node id or register, as the source put it
    what: str  # a printable rendering of what was refused (at most WHAT_MAX characters)
    reason: str


def render(value: object) -> str:
    """What a rejected input was, printable and bounded."""
    text = repr(value)
    return text if len(text) <= WHAT_MAX else text[: WHAT_MAX - 1] + "…"
