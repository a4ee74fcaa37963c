"""Sparkplug B payloads (bytes) to our own tuples, and the one payload we send: Rebirth.

Values are converted by the metric's datatype (Sparkplug 3.0 §6.4.16), which data messages
usually leave out: `convert` is called by the session once the birth told the type. Integers of
8 to 32 bits travel in the uint32 `int_value`, 64-bit ones in the uint64 `long_value`, negative
ones as two's complement; senders that sign-extend to 64 bits are truncated by protobuf, so each
is masked to its width, then signed. UInt32 is accepted in either field (older Tahu, Ignition).
DateTime is milliseconds since the epoch: stored as that number and as ISO 8601 text.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum
from functools import partial
from typing import Any, NamedTuple

from google.protobuf.message import (  # type: ignore[import-untyped]
    DecodeError as ProtobufDecodeError,
)

from adapters.base import Quality
from adapters.errors import DecodeError
from adapters.sparkplug.schema import payload_class

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
_SCALAR_KINDS = {
    "int_value",
    "long_value",
    "float_value",
    "double_value",
    "boolean_value",
    "string_value",
}


class Unsupported(ValueError):
    """A metric whose value is not one reading (a dataset, template, array, bytes, file)."""


class MetricIn(NamedTuple):
    """One metric as received; `kind` is the value field that was set (None: no value)."""

    name: str | None
    alias: int | None
    ts_ms: int | None
    datatype: int | None
    is_historical: bool
    is_transient: bool
    is_null: bool
    kind: str | None
    raw: Any
    quality: int  # from the `Quality` property; GOOD when absent


_metric_in = partial(tuple.__new__, MetricIn)  # a MetricIn from a tuple of its fields, in C


class PayloadIn(NamedTuple):
    timestamp_ms: int | None
    seq: int | None
    metrics: tuple[MetricIn, ...]


def decode(data: bytes) -> PayloadIn:
    """A payload's fields; DecodeError if it is not a Sparkplug B payload or its seq is > 255."""
    try:
        p = payload_class().FromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"not a Sparkplug B payload: {exc}") from exc
    seq = p.seq if p.HasField("seq") else None
    if seq is not None and seq > MAX_SEQ:
        raise DecodeError(f"seq {seq} is above {MAX_SEQ}")
    metrics: list[MetricIn] = []
    append, has = metrics.append, _SCALAR_KINDS.__contains__
    for m in p.metrics:
        kind = m.WhichOneof("value")
        has_field = m.HasField
        # 0 is no timestamp and datatype 0 is Unknown: both read as absent without HasField
        append(
            _metric_in(
                (
                    m.name if has_field("name") else None,
                    m.alias if has_field("alias") else None,
                    m.timestamp or None,
                    m.datatype or None,
                    m.is_historical,
                    m.is_transient,
                    m.is_null,
                    kind,
                    getattr(m, kind) if has(kind) else None,
                    _quality(m.properties) if has_field("properties") else Quality.GOOD,
                )
            )
        )
    stamp = p.timestamp if p.HasField("timestamp") else None
    return PayloadIn(stamp, seq, tuple(metrics))


def _quality(properties: Any) -> int:
    for key, value in zip(properties.keys, properties.values, strict=False):
        if key == "Quality" and value.WhichOneof("value") in ("int_value", "long_value"):
            code = value.int_value if value.HasField("int_value") else value.long_value
            return _QUALITY.get(code, Quality.UNCERTAIN)
    return Quality.GOOD


def convert(datatype: int | None, metric: MetricIn) -> tuple[float | None, str | None]:
    """(value, text) of a metric with a value, by its datatype; Unsupported for what is not one
    reading. Without a known datatype the value field alone decides (integers as unsigned)."""
    kind, raw = metric.kind, metric.raw
    if kind not in _SCALAR_KINDS:
        raise Unsupported(f"{kind or 'no value'} (datatype {datatype})")
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
