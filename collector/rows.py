"""The collector's row: a reading mapped to its tag, before the database assigns tag ids; and
what was refused on the way, kept with its reason (rejected_readings), never dropped silently."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

# (time, tag key `machine.name`, value, quality, text): the spool stores exactly this.
Row = tuple[dt.datetime, str, float | None, int, str | None]

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
