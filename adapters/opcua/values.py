"""DataValue -> (value, text, quality, timestamp): pure, so every rule is tested as a table.

Quality (readings.quality, smallint): plain Good, Uncertain and Bad are 0, 1 and 2 as
`adapters.base.Quality`; any other StatusCode keeps its top 16 bits as a signed 16-bit number (no
Good sub-code is 1 or 2), which `severity()` reads back (docs/adapters/opcua.md#quality). A value
with a Bad status is stored without value, so it cannot pass for the last good one.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from typing import Any, NamedTuple

from asyncua import ua
from asyncua.ua.status_codes import code_to_name_doc

from adapters.base import Quality
from adapters.errors import DecodeError

_PLAIN = {0x0000: Quality.GOOD, 0x4000: Quality.UNCERTAIN, 0x8000: Quality.BAD}


def quality_from_status(code: int) -> int:
    """The stored quality of an OPC UA StatusCode (32-bit unsigned)."""
    top = (code >> 16) & 0xFFFF
    if top in _PLAIN:
        return int(_PLAIN[top])
    return top - 0x10000 if top & 0x8000 else top


def severity(quality: int) -> Quality:
    """Good, Uncertain or Bad of a stored quality, in either of its forms."""
    if quality in (Quality.GOOD, Quality.UNCERTAIN, Quality.BAD):
        return Quality(quality)
    if quality < 0:
        return Quality.BAD  # top bit set: Bad (and the reserved severity 11)
    return Quality.UNCERTAIN if quality >= 0x4000 else Quality.GOOD


def status_code(dv: ua.DataValue) -> int:
    sc = dv.StatusCode
    if sc is None:
        return 0
    return int(sc.value if isinstance(sc, ua.StatusCode) else sc)


def status_name(code: ua.StatusCode | int | None) -> str:
    """A StatusCode as logs and errors show it: `BadNodeIdUnknown`, never `StatusCode(value=…)`.

    A code asyncua does not know exactly (info bits set, or a vendor's code) keeps its hex
    after the name of its top 16 bits, else of its severity: `Good (0x00000400)`."""
    if code is None:
        return "Good"  # an absent StatusCode is Good (OPC UA Part 6, DataValue encoding)
    value = int(code.value if isinstance(code, ua.StatusCode) else code) & 0xFFFFFFFF
    if value in code_to_name_doc:
        return code_to_name_doc[value][0]
    top = value & 0xFFFF0000
    if top in code_to_name_doc:
        name = code_to_name_doc[top][0]
    else:
        name = "Bad" if value & 0x80000000 else "Uncertain" if value & 0x40000000 else "Good"
    return f"{name} (0x{value:08X})"


def convert_value(raw: Any) -> tuple[float | None, str | None]:
    """An OPC UA scalar as (value, text): numbers and booleans as float, text as text."""
    if isinstance(raw, ua.Variant):
        raw = raw.Value
    if raw is None:
        return None, None
    if isinstance(raw, bool):
        return (1.0 if raw else 0.0), None
    if isinstance(raw, enum.Enum):
        raw = raw.value
    if isinstance(raw, int | float):
        value = float(raw)
        if math.isnan(value) or math.isinf(value):
            raise DecodeError(f"not a finite number: {raw!r}")
        return value, None
    if isinstance(raw, str):
        return None, raw
    if isinstance(raw, ua.LocalizedText):
        return None, raw.Text
    if isinstance(raw, ua.QualifiedName):
        return None, raw.Name
    if isinstance(raw, dt.datetime):
        return None, aware(raw).isoformat()
    if isinstance(raw, bytes | bytearray):
        return None, bytes(raw).hex()
    raise DecodeError(
        f"unsupported value type {type(raw).__name__} (arrays and structures "
        "are not read as one reading)"
    )


def aware(ts: dt.datetime) -> dt.datetime:
    """asyncua gives naive UTC datetimes; readings carry aware UTC ones."""
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


def pick_timestamp(dv: ua.DataValue, which: str, fallback: dt.datetime) -> dt.datetime:
    """Source or server timestamp as configured, else the other one, else `fallback`;
    `collector`: `fallback` always (the collector's clock when it read or received the value)."""
    if which == "collector":
        return fallback
    order = (dv.SourceTimestamp, dv.ServerTimestamp)
    if which == "server":
        order = order[::-1]
    for ts in order:
        if ts is not None and ts.year > 1601:  # 1601-01-01 is OPC UA's "no time"
            return aware(ts)
    return fallback


class Converted(NamedTuple):
    """One DataValue as a Reading stores it."""

    value: float | None
    text: str | None
    quality: int
    ts: dt.datetime


def from_datavalue(dv: ua.DataValue, timestamp: str, now: dt.datetime) -> Converted:
    """One DataValue's reading fields. DecodeError for a value we cannot store."""
    quality = quality_from_status(status_code(dv))
    ts = pick_timestamp(dv, timestamp, now)
    if severity(quality) is Quality.BAD:
        return Converted(None, None, quality, ts)
    return Converted(*convert_value(dv.Value), quality, ts)
