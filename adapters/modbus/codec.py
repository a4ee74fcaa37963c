"""Registers to values and back: pure functions, no I/O.

A value's bytes are named A (most significant) .. D (or .. H for 64 bits). `byte_order` says how
they lie across the 16-bit registers as the device sends them (each register big-endian on the
wire, as the spec says):

    ABCD  registers [AB, CD]          big-endian (Modbus default)
    CDAB  registers [CD, AB]          word swap ("little-endian word order"; many PLCs)
    BADC  registers [BA, DC]          byte swap inside each register
    DCBA  registers [DC, BA]          fully little-endian

For 64-bit values the same two swaps apply to four registers (CDAB = [GH, EF, CD, AB]). For a
single register only the byte swap matters (BADC and DCBA read BA). For strings the characters
run in register order and only the byte swap applies: ABCD/CDAB put the first character in the
high byte, BADC/DCBA in the low byte. `bit` numbers the bits of the register value after the
byte swap, 0 = least significant.

Both directions live here so simulators and tests write registers exactly as devices do.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from adapters.errors import DecodeError
from config.sources.modbus import ByteOrder, DataType, ModbusTag

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
    """Registers holding `value` for this tag, scale and offset undone (for simulators/tests).

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
