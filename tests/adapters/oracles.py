"""Reference implementations the adapters' fast paths are pinned against, and the encoders
tests write registers with. Written plainly, one value at a time, and sharing no decoding code
with what they check (only config types, `DecodeError` and the MQTT payload's JSON, path and
timestamp helpers, whose rules are table-tested on their own).

- Modbus: `decode(tag, registers)` per tag, the reference for `RequestDecoder`; `encode` and
  `encode_raw`, its inverses, write registers as a device with that byte order sends them.
- MQTT: `decode_payload(payload, specs)`, spec by spec, the reference for `payload.Decoder`.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Sequence
from typing import Any

from adapters.errors import DecodeError
from adapters.mqtt.payload import (
    Columns,
    FieldSpec,
    MissingField,
    get_path,
    parse_json,
    parse_timestamp,
)
from config.sources.modbus import ByteOrder, DataType, ModbusTag

# --- Modbus ------------------------------------------------------------------------------------

Raw = int | float | str | bool

# struct format (big-endian) and width in registers of each fixed-width type.
_FORMATS: dict[DataType, tuple[str, int]] = {
    DataType.INT16: (">h", 1),
    DataType.UINT16: (">H", 1),
    DataType.INT32: (">i", 2),
    DataType.UINT32: (">I", 2),
    DataType.INT64: (">q", 4),
    DataType.UINT64: (">Q", 4),
    DataType.FLOAT32: (">f", 2),
    DataType.FLOAT64: (">d", 4),
}
_WORD_SWAP = (ByteOrder.CDAB, ByteOrder.DCBA)
_BYTE_SWAP = (ByteOrder.BADC, ByteOrder.DCBA)


def width(data_type: DataType, length: int | None = None) -> int:
    """Registers a value of this type occupies (strings: `length`; bool: one register)."""
    if data_type is DataType.STRING:
        if not length:
            raise ValueError("a string needs its length in registers")
        return length
    if data_type is DataType.BOOL:
        return 1
    return _FORMATS[data_type][1]


def _swap_bytes(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def to_canonical(registers: Sequence[int], byte_order: ByteOrder) -> list[int]:
    """Registers as sent -> registers in ABCD order. The mapping is its own inverse."""
    words = [int(r) & 0xFFFF for r in registers]
    if byte_order in _WORD_SWAP:
        words.reverse()
    if byte_order in _BYTE_SWAP:
        words = [_swap_bytes(w) for w in words]
    return words


def _to_bytes(words: Sequence[int]) -> bytes:
    return b"".join(w.to_bytes(2, "big") for w in words)


def _from_bytes(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def decode_raw(
    registers: Sequence[int],
    data_type: DataType,
    byte_order: ByteOrder = ByteOrder.ABCD,
    *,
    bit: int | None = None,
) -> Raw:
    """The value the registers hold, before scale and offset."""
    if bit is not None:
        (word,) = to_canonical(registers[:1], byte_order)
        return bool((word >> bit) & 1)
    if data_type is DataType.STRING:
        order = ByteOrder.BADC if byte_order in _BYTE_SWAP else ByteOrder.ABCD
        data = _to_bytes(to_canonical(registers, order))
        return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
    if data_type is DataType.BOOL:
        return bool(registers[0])
    fmt, count = _FORMATS[data_type]
    if len(registers) != count:
        raise DecodeError(f"{data_type.value} needs {count} registers, got {len(registers)}")
    return struct.unpack(fmt, _to_bytes(to_canonical(registers, byte_order)))[0]


def encode_raw(
    value: Raw,
    data_type: DataType,
    byte_order: ByteOrder = ByteOrder.ABCD,
    *,
    length: int | None = None,
) -> list[int]:
    """Registers as a device would send `value` (inverse of `decode_raw`, bits excepted)."""
    if data_type is DataType.STRING:
        count = width(data_type, length)
        data = str(value).encode("utf-8")
        if len(data) > 2 * count:
            raise ValueError(f"{value!r} does not fit in {count} registers")
        order = ByteOrder.BADC if byte_order in _BYTE_SWAP else ByteOrder.ABCD
        return to_canonical(_from_bytes(data.ljust(2 * count, b"\x00")), order)
    if data_type is DataType.BOOL:
        return [1 if value else 0]
    fmt, _ = _FORMATS[data_type]
    number = value if fmt[-1] in "fd" else int(value)
    return to_canonical(_from_bytes(struct.pack(fmt, number)), byte_order)


def decode(tag: ModbusTag, data: Sequence[int] | Sequence[bool]) -> tuple[float | None, str | None]:
    """A tag's `(value, text)` for a Reading from its registers or bits, scale and offset applied.

    Numbers and booleans come back as float (NaN and infinities as the device sent them);
    strings as text with value None.
    """
    if tag.table.is_bit:
        return (1.0 if data[0] else 0.0), None
    raw = decode_raw(data, tag.type, tag.byte_order, bit=tag.bit)  # type: ignore[arg-type]
    if isinstance(raw, str):
        return None, raw
    if isinstance(raw, bool):
        return (1.0 if raw else 0.0), None
    return float(raw) * tag.scale + tag.offset, None


def encode(tag: ModbusTag, value: Raw) -> list[int]:
    """Registers holding `value` for this tag, scale and offset undone.

    For a `bit` tag this is the register with only that bit set (or none); coils are [0|1].
    """
    if tag.table.is_bit:
        return [1 if value else 0]
    if tag.bit is not None:
        return to_canonical([(1 << tag.bit) if value else 0], tag.byte_order)
    if tag.type.is_number and (tag.scale != 1.0 or tag.offset != 0.0):
        value = (float(value) - tag.offset) / tag.scale
        if tag.type not in (DataType.FLOAT32, DataType.FLOAT64):
            value = round(value)
    return encode_raw(value, tag.type, tag.byte_order, length=tag.length)


# --- MQTT payloads -----------------------------------------------------------------------------

Row = tuple[float | None, str | None, dt.datetime | None]  # (value, text, payload timestamp)


def decode_payload(payload: bytes, specs: Sequence[FieldSpec]) -> list[Row | DecodeError]:
    """Per spec, on its own: (value, text, payload timestamp or None), or the DecodeError it
    gave (`MissingField` when its value field is absent; an absent timestamp is a plain
    DecodeError with the same text)."""
    return [_decode_one(payload, s) for s in specs]


def _decode_one(payload: bytes, s: FieldSpec) -> Row | DecodeError:
    try:
        if s.field is None:  # a plain payload: UTF-8 text, not blank
            try:
                whole = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError("payload is not UTF-8 text") from exc
            if not whole.strip():
                raise DecodeError("empty payload")
            value, text = _scalar_text(whole.strip())
        else:
            value, text = _to_value(get_path(parse_json(payload), s.field))
        ts = None
        if s.timestamp_field is not None:
            try:
                raw = get_path(parse_json(payload), s.timestamp_field)
            except MissingField as exc:
                raise DecodeError(str(exc)) from None
            ts = parse_timestamp(raw, s.timestamp_format)
    except DecodeError as exc:
        return exc
    return (value, text, ts)


def rows(columns: Columns) -> list[Row | DecodeError]:
    """A `Decoder`'s columns as `decode_payload`'s rows."""
    n = len(columns.values)
    texts = columns.texts if columns.texts is not None else [None] * n
    errors = columns.errors if columns.errors is not None else [None] * n
    return [
        (v, t, ts) if e is None else e
        for v, t, ts, e in zip(columns.values, texts, columns.stamps, errors, strict=True)
    ]


def _to_value(raw: Any) -> tuple[float | None, str | None]:
    if isinstance(raw, bool):
        return (1.0 if raw else 0.0), None
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:  # a JSON integer beyond any float
            raise DecodeError(f"not a finite number: {raw!r}") from None
        if not math.isfinite(value):
            raise DecodeError(f"not a finite number: {raw!r}")
        return value, None
    if isinstance(raw, str):
        return _scalar_text(raw)
    raise DecodeError(f"expected a number, bool or string, got {type(raw).__name__}")


def _scalar_text(text: str) -> tuple[float | None, str | None]:
    low = text.strip().lower()
    if low in ("true", "on"):
        return 1.0, None
    if low in ("false", "off"):
        return 0.0, None
    try:
        value = float(low)
    except ValueError:
        return None, text
    if not math.isfinite(value):
        raise DecodeError(f"not a finite number: {text!r}")
    return value, None
