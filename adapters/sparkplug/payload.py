"""Sparkplug B payloads (bytes) to their fields, value conversion, and the one payload we send.

`decode` checks the payload and gives its timestamp and seq; its metrics stay protobuf messages
(typed by `Metric`), read field by field where they are used: a data message's metrics are read
once, straight into readings (metrics.py), with no tuple of our own in between.

Values are converted by the metric's datatype (Sparkplug 3.0 §6.4.16), which data messages
usually leave out: `convert` is given the birth's type then. Integers of 8 to 32 bits travel in
the uint32 `int_value`, 64-bit ones in the uint64 `long_value`, negative ones as two's
complement; senders that sign-extend to 64 bits are truncated by protobuf, so each is masked to
its width, then signed. UInt32 is accepted in either field (older Tahu, Ignition). DateTime is
milliseconds since the epoch: stored as that number and as ISO 8601 text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import IntEnum
from typing import Any, NamedTuple, Protocol

from google.protobuf.message import (  # type: ignore[import-untyped]
    DecodeError as ProtobufDecodeError,
)

from adapters.base import Quality
from adapters.errors import DecodeError
from adapters.sparkplug.schema import ONEOF, payload_class

MAX_SEQ = 255
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"


class DataType(IntEnum):
    """Sparkplug 3.0 §6.4.16, the ones a reading can hold (arrays, datasets... are skipped)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15


# datatype -> (bits, signed) for the integers
_INTEGERS = {
    DataType.INT8: (8, True),
    DataType.INT16: (16, True),
    DataType.INT32: (32, True),
    DataType.INT64: (64, True),
    DataType.UINT8: (8, False),
    DataType.UINT16: (16, False),
    DataType.UINT32: (32, False),
    DataType.UINT64: (64, False),
}
# the metric property `Quality` (§6.4.7 note): 0 bad, 192 good, 500 stale
_QUALITY = {0: Quality.BAD, 192: Quality.GOOD, 500: Quality.UNCERTAIN}
_SCALAR_KINDS = frozenset(
    {"int_value", "long_value", "float_value", "double_value", "boolean_value", "string_value"}
)


class Unsupported(ValueError):
    """A metric whose value is not one reading (a dataset, template, array, bytes, file)."""


class Metric(Protocol):
    """The fields of a received protobuf `Payload.Metric` that we read (protobuf has no types).

    Absent scalars read as 0, "" or False; `HasField` tells absent from zero where it matters
    (name, alias, properties). The value is the member of the `value` oneof that is set."""

    name: str
    alias: int
    timestamp: int
    datatype: int
    is_historical: bool
    is_transient: bool
    is_null: bool
    double_value: float
    properties: Any

    def HasField(self, field: str) -> bool: ...  # protobuf's name

    def WhichOneof(self, oneof: str) -> str | None: ...  # protobuf's name


class PayloadIn(NamedTuple):
    timestamp_ms: int | None
    seq: int | None
    metrics: Sequence[Metric]


def decode(data: bytes) -> PayloadIn:
    """A payload's fields; DecodeError if it is not a Sparkplug B payload or its seq is > 255."""
    try:
        p = payload_class().FromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"not a Sparkplug B payload: {exc}") from exc
    seq = p.seq if p.HasField("seq") else None
    if seq is not None and seq > MAX_SEQ:
        raise DecodeError(f"seq {seq} is above {MAX_SEQ}")
    stamp_ms = p.timestamp if p.HasField("timestamp") else None
    return PayloadIn(stamp_ms, seq, p.metrics)


def quality(m: Metric) -> int:
    """The metric's `Quality` property as ours; GOOD without one."""
    if not m.HasField("properties"):
        return Quality.GOOD
    properties = m.properties
    for key, value in zip(properties.keys, properties.values, strict=False):
        if key == "Quality" and value.WhichOneof(ONEOF) in ("int_value", "long_value"):
            code = value.int_value if value.HasField("int_value") else value.long_value
            return _QUALITY.get(code, Quality.UNCERTAIN)
    return Quality.GOOD


def convert(datatype: int | None, m: Metric) -> tuple[float | None, str | None]:
    """(value, text) of a metric with a value, by its datatype; Unsupported for what is not one
    reading. Without a known datatype the value field alone decides (integers as unsigned)."""
    kind = m.WhichOneof(ONEOF)
    if kind not in _SCALAR_KINDS:
        raise Unsupported(f"{kind or 'no value'} (datatype {datatype})")
    raw = getattr(m, kind)
    if datatype in _INTEGERS and kind in ("int_value", "long_value"):
        bits, signed = _INTEGERS[DataType(datatype)]
        number = raw & ((1 << bits) - 1)
        if signed and number >= 1 << (bits - 1):
            number -= 1 << bits
        return float(number), None
    if datatype == DataType.DATETIME and kind == "long_value":
        return float(raw), (EPOCH + dt.timedelta(milliseconds=raw)).isoformat()
    if kind == "string_value":
        return None, raw
    if kind == "boolean_value":
        return (1.0 if raw else 0.0), None
    return float(raw), None


def name_of(m: Metric) -> str | None:
    """The metric's name; None when it has none (data by alias)."""
    return m.name if m.HasField("name") else None


def alias_of(m: Metric) -> int | None:
    return m.alias if m.HasField("alias") else None


def bd_seq(payload: PayloadIn) -> int | None:
    """The `bdSeq` metric's value (NBIRTH, NDEATH); None without one."""
    for m in payload.metrics:
        if name_of(m) == BDSEQ_METRIC:
            kind = m.WhichOneof(ONEOF)
            if kind in ("long_value", "int_value"):
                return int(getattr(m, kind))
    return None


def stamp(ms: int) -> dt.datetime:
    """A Sparkplug timestamp (ms since the epoch, UTC) as an exact datetime."""
    return EPOCH + dt.timedelta(milliseconds=ms)


def encode_rebirth(now_ms: int) -> bytes:
    """The NCMD payload asking an edge node to rebirth (§6.4.x): timestamp, no seq, one metric."""
    p = payload_class()()
    p.timestamp = now_ms
    metric = p.metrics.add()
    metric.name = REBIRTH_METRIC
    metric.timestamp = now_ms
    metric.datatype = DataType.BOOLEAN
    metric.boolean_value = True
    return bytes(p.SerializeToString())
