"""The simulator's own Sparkplug B payload encoder (and the little NCMD reading it needs).

Written from the specification's field numbers (Sparkplug 3.0 §6.4), sharing no code with
`adapters.sparkplug`, which decodes with Google's protobuf: each checks the other on the wire,
as `simulators/truth.py` checks the KPI engine. Only the fields an edge node sends: payload
timestamp and seq, metric name, alias, timestamp, datatype, is_historical, is_null and the
scalar values.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# Sparkplug 3.0 §6.4.16 datatypes the simulator sends
INT8, INT16, INT32, INT64 = 1, 2, 3, 4
UINT8, UINT16, UINT32, UINT64 = 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME = 9, 10, 11, 12, 13

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_INT_FIELD = {INT8, INT16, INT32, UINT8, UINT16, UINT32}  # uint32 int_value, field 10
_LONG_FIELD = {INT64, UINT64, DATETIME}  # uint64 long_value, field 11


@dataclass(frozen=True)
class WireMetric:
    name: str | None
    alias: int | None
    timestamp_ms: int | None
    datatype: int | None  # births carry it; data messages leave it out
    value: bool | int | float | str | None  # None: is_null
    value_type: int = 0  # the datatype that picks the value field (when `datatype` is left out)
    is_historical: bool = False


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _len(number: int, data: bytes) -> bytes:
    return _key(number, _LEN) + _varint(len(data)) + data


def _uint(number: int, n: int) -> bytes:
    return _key(number, _VARINT) + _varint(n)


def _metric(m: WireMetric) -> bytes:
    out = b""
    if m.name is not None:
        out += _len(1, m.name.encode())
    if m.alias is not None:
        out += _uint(2, m.alias)
    if m.timestamp_ms is not None:
        out += _uint(3, m.timestamp_ms)
    if m.datatype is not None:
        out += _uint(4, m.datatype)
    if m.is_historical:
        out += _uint(5, 1)
    kind = m.datatype if m.datatype is not None else m.value_type
    if m.value is None:
        return out + _uint(7, 1)
    v = m.value
    if kind in _INT_FIELD:
        out += _uint(10, int(v) & 0xFFFFFFFF)  # two's complement in 32 bits
    elif kind in _LONG_FIELD:
        out += _uint(11, int(v) & 0xFFFFFFFFFFFFFFFF)
    elif kind == FLOAT:
        out += _key(12, _FIXED32) + struct.pack("<f", float(v))
    elif kind == DOUBLE:
        out += _key(13, _FIXED64) + struct.pack("<d", float(v))
    elif kind == BOOLEAN:
        out += _uint(14, 1 if v else 0)
    elif kind == STRING:
        out += _len(15, str(v).encode())
    else:
        raise ValueError(f"datatype {kind} is not one the simulator sends")
    return out


def encode_payload(
    timestamp_ms: int | None, seq: int | None, metrics: Sequence[WireMetric]
) -> bytes:
    """A Sparkplug B payload: fields 1 (timestamp), 2 (metrics) and 3 (seq)."""
    out = b"" if timestamp_ms is None else _uint(1, timestamp_ms)
    for m in metrics:
        out += _len(2, _metric(m))
    if seq is not None:
        out += _uint(3, seq)
    return out


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message; ValueError if truncated."""
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, i = _read_varint(data, i)
            yield number, wire, value
        elif wire == _LEN:
            size, i = _read_varint(data, i)
            if i + size > len(data):
                raise ValueError("truncated field")
            yield number, wire, data[i : i + size]
            i += size
        elif wire in (_FIXED32, _FIXED64):
            width = 4 if wire == _FIXED32 else 8
            yield number, wire, data[i : i + width]
            i += width
        else:
            raise ValueError(f"wire type {wire} not expected")


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        byte = data[i]
        i += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, i


def true_booleans(payload: bytes) -> list[str]:
    """Names of the metrics a command payload sets to boolean true (field 14)."""
    names: list[str] = []
    for number, _, value in _fields(payload):
        if number != 2 or not isinstance(value, bytes):
            continue
        name, flag = None, False
        for f, _, v in _fields(value):
            if f == 1 and isinstance(v, bytes):
                name = v.decode()
            elif f == 14 and isinstance(v, int):
                flag = bool(v)
        if name is not None and flag:
            names.append(name)
    return names
