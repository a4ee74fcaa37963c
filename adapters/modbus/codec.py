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
from config.sources.modbus import ByteOrder, DataType, ModbusTag, RegisterKind

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


def _text(data: bytes) -> str:
    """A STRING tag's text: up to the first NUL, undecodable bytes replaced."""
    return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


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
        return _text(_to_bytes(to_canonical(registers, order)))
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


def bulk_field(tag: ModbusTag) -> tuple[bool, str, str]:
    """Where one `struct` unpack of a whole response finds a register tag's raw value.

    Returns `(swapped, order, code)`: read from the response's bytes as sent (`swapped` False)
    or from a copy with the two bytes of every register swapped, with struct byte order `order`
    ('>' or '<') and struct `code`. This is `to_canonical` turned into byte offsets: the word
    swap reverses the value's bytes (read little-endian), and of the byte-swapped copy a
    byte-swapped value reads big-endian. Bits and bools read their one register as 'H'.
    """
    n = tag.register_count
    byte_swap = tag.byte_order in _BYTE_SWAP
    if tag.type is DataType.STRING:  # characters in register order: only the byte swap applies
        return byte_swap, ">", f"{2 * n}s"
    code = "H" if tag.bit is not None or tag.type is DataType.BOOL else _FORMATS[tag.type][0][1]
    word_swap = tag.byte_order in _WORD_SWAP and n > 1
    swapped, little = word_swap != byte_swap, word_swap
    if n == 1 and swapped:  # one register: big-endian of the swapped copy = little-endian as sent
        swapped, little = False, True
    return swapped, "<" if little else ">", code


# What RequestDecoder does with a tag's raw value.
_PLAIN, _NUMBER, _BIT, _FLAG, _TEXT, _COIL = range(6)
Step = tuple[int, int, int | float, float]  # (what, index into unpacked values or data, a, b)


class RequestDecoder:
    """Decodes every tag of one read request from its response at once.

    Planned once per request (what `decode` does per tag, in bulk): one `struct.Struct` per
    byte source and order unpacks all register values of the response (fields that overlap
    another tag's, e.g. a uint32 and a uint16 inside it, go to a further Struct), then each tag
    gets `decode`'s value. Coils and discrete inputs are picked by index. `decode(tag, slice)`
    stays the reference: tests pin this class against it for every type and order.
    """

    __slots__ = (
        "_steps",
        "_structs",
        "_swap",
        "_wire",
        "checks_finite",
        "count",
        "has_text",
        "is_bits",
        "plain",
    )

    def __init__(
        self, table: RegisterKind, address: int, count: int, tags: Sequence[ModbusTag]
    ) -> None:
        self.count = count
        self.is_bits = table.is_bit
        self._wire = struct.Struct(f">{count}H")
        self._swap: struct.Struct | None = None
        self._structs: list[tuple[bool, struct.Struct]] = []
        self._steps: list[Step] = []
        for tag in tags:
            start = tag.address - address
            if tag.table is not table or start < 0 or start + tag.register_count > count:
                raise ValueError(
                    f"{tag.key}: {tag.table.value} {tag.address}+{tag.register_count} is not "
                    f"within the request's {table.value} {address}+{count}"
                )
        if self.is_bits:
            self._steps = [(_COIL, tag.address - address, 0.0, 0.0) for tag in tags]
        else:
            self._plan_registers(address, tags)
        self.has_text = any(what == _TEXT for what, *_ in self._steps)
        # NaN and infinities can come only from floats or from scaling (a huge `scale`).
        self.checks_finite = any(
            tag.type in (DataType.FLOAT32, DataType.FLOAT64) or what == _NUMBER
            for tag, (what, *_) in zip(tags, self._steps, strict=True)
        )
        # Every tag an unscaled integer, unpacked in tag order: decode() is one map(float).
        self.plain = not self.is_bits and [s[:2] for s in self._steps] == [
            (_PLAIN, i) for i in range(len(self._steps))
        ]

    def _plan_registers(self, address: int, tags: Sequence[ModbusTag]) -> None:
        fields: dict[tuple[bool, str, int, str], int] = {}  # one field per distinct read
        for tag in tags:
            swapped, order, code = bulk_field(tag)
            fields.setdefault((swapped, order, 2 * (tag.address - address), code), len(fields))
        # Fields of one byte source and order, by offset, into layers that do not overlap.
        layers: dict[tuple[bool, str], list[tuple[int, list[tuple[int, str, int]]]]] = {}
        for (swapped, order, offset, code), field_id in sorted(fields.items()):
            size = struct.calcsize(f"{order}{code}")
            stack = layers.setdefault((swapped, order), [])
            for i, (end, members) in enumerate(stack):
                if end <= offset:
                    members.append((offset, code, field_id))
                    stack[i] = (offset + size, members)
                    break
            else:
                stack.append((offset + size, [(offset, code, field_id)]))
        position: dict[int, int] = {}  # field id -> index in the concatenated unpacked tuples
        for (swapped, order), stack in layers.items():
            for _, members in stack:
                fmt, at = [order], 0
                for offset, code, field_id in members:
                    if offset > at:
                        fmt.append(f"{offset - at}x")
                    fmt.append(code)
                    at = offset + struct.calcsize(f"{order}{code}")
                    position[field_id] = len(position)
                self._structs.append((swapped, struct.Struct("".join(fmt))))
                if swapped and self._swap is None:
                    self._swap = struct.Struct(f"<{self.count}H")
        for tag in tags:
            swapped, order, code = bulk_field(tag)
            index = position[fields[(swapped, order, 2 * (tag.address - address), code)]]
            if tag.type is DataType.STRING:
                self._steps.append((_TEXT, index, 0.0, 0.0))
            elif tag.bit is not None:
                self._steps.append((_BIT, index, 1 << tag.bit, 0.0))  # a: the mask
            elif tag.type is DataType.BOOL:
                self._steps.append((_FLAG, index, 0.0, 0.0))
            elif (
                tag.type in (DataType.FLOAT32, DataType.FLOAT64)
                or tag.scale != 1.0
                or tag.offset != 0.0
            ):
                self._steps.append((_NUMBER, index, tag.scale, tag.offset))
            else:  # an integer as is: float(raw) * 1.0 + 0.0 == float(raw) exactly
                self._steps.append((_PLAIN, index, 1.0, 0.0))

    def decode(
        self, data: Sequence[int] | Sequence[bool]
    ) -> tuple[list[float | None], list[str | None] | None]:
        """Each tag's value (as `decode` gives it; None for strings) and text (None if none).

        Raises struct.error or DecodeError for a response it cannot take whole (short or long,
        or register values outside 0..65535): the caller then decodes tag by tag, where each
        tag is judged on its own slice as before.
        """
        if self.is_bits:
            if len(data) < self.count:
                raise DecodeError(f"asked {self.count} bits, got {len(data)}")
            return [1.0 if data[i] else 0.0 for _, i, _, _ in self._steps], None
        wire = self._wire.pack(*data)  # struct.error unless `count` registers of 0..65535
        swap = self._swap.pack(*data) if self._swap is not None else wire
        if len(self._structs) == 1:
            swapped, unpacker = self._structs[0]
            raw = unpacker.unpack_from(swap if swapped else wire)
        else:
            raw = ()
            for swapped, unpacker in self._structs:
                raw += unpacker.unpack_from(swap if swapped else wire)
        if self.plain:
            return list(map(float, raw)), None
        values: list[float | None] = []
        texts: list[str | None] | None = [] if self.has_text else None
        for what, index, a, b in self._steps:
            v = raw[index]
            if what == _PLAIN:
                values.append(float(v))
            elif what == _NUMBER:
                values.append(float(v) * a + b)
            elif what == _BIT:
                values.append(1.0 if v & a else 0.0)  # type: ignore[operator]
            elif what == _FLAG:
                values.append(1.0 if v else 0.0)
            else:
                values.append(None)
            if texts is not None:
                texts.append(_text(v) if what == _TEXT else None)  # type: ignore[arg-type]
        return values, texts


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
