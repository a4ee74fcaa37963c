"""Registers to values: the plan that decodes every tag of one read request at once. Pure.

A value's bytes are A (most significant) .. D (.. H for 64 bits); `byte_order` says how they lie
across the 16-bit registers, each big-endian on the wire: ABCD as they are, CDAB word swap, BADC
byte swap inside each register, DCBA both. docs/adapters/modbus.md#byte-and-word-order has the
table and the rules for 64-bit values, single registers, strings and bits.

`RequestDecoder` is the only decoder: tests/adapters/oracles.py holds a plain per-tag reference
(and the encoder tests write registers with) that it is pinned against.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from adapters.errors import DecodeError
from config.sources.modbus import ByteOrder, DataType, ModbusTag, RegisterKind

Response = Sequence[int] | Sequence[bool]  # a read's registers, or its bits (coils, inputs)
TagValue = tuple[float | None, str | None]  # one tag's (value, text), as a Reading holds them

# struct code of each fixed-width type, by its config name (the byte order is the caller's).
_CODES: dict[str, str] = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}
_FLOATS = (DataType.FLOAT32, DataType.FLOAT64)
_WORD_SWAP = (ByteOrder.CDAB, ByteOrder.DCBA)
_BYTE_SWAP = (ByteOrder.BADC, ByteOrder.DCBA)


def _text(data: bytes) -> str:
    """A STRING tag's text: up to the first NUL, undecodable bytes replaced."""
    return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def bulk_field(tag: ModbusTag) -> tuple[bool, str, str]:
    """Where one `struct` unpack of a whole response finds a register tag's raw value.

    Returns `(swapped, order, code)`: read from the response's bytes as sent (`swapped` False)
    or from a copy with the two bytes of every register swapped, with struct byte order `order`
    ('>' or '<') and struct `code`. This is the byte orders turned into byte offsets: the
    word swap reverses the value's bytes (read little-endian), and of the byte-swapped copy a
    byte-swapped value reads big-endian. Bits and bools read their one register as 'H'.
    """
    n = tag.register_count
    byte_swap = tag.byte_order in _BYTE_SWAP
    if tag.type is DataType.STRING:  # characters in register order: only the byte swap applies
        return byte_swap, ">", f"{2 * n}s"
    code = "H" if tag.bit is not None or tag.type is DataType.BOOL else _CODES[tag.type]
    word_swap = tag.byte_order in _WORD_SWAP and n > 1
    swapped, little = word_swap != byte_swap, word_swap
    if n == 1 and swapped:  # one register: big-endian of the swapped copy = little-endian as sent
        swapped, little = False, True
    return swapped, "<" if little else ">", code


class Decoded(NamedTuple):
    """A response's tags, in request order, as columns."""

    values: list[float | None]  # numbers and booleans as float (NaN, inf as sent); None: text
    texts: list[str | None] | None  # None when no tag is text


# What RequestDecoder does with a tag's raw value.
_PLAIN, _NUMBER, _BIT, _FLAG, _TEXT, _COIL = range(6)
Step = tuple[int, int, int | float, float]  # (what, index into unpacked values or data, a, b)


class RequestDecoder:
    """Decodes every tag of one read request from its response at once.

    Planned once per request: one `struct.Struct` per byte source and order unpacks all register
    values of the response (fields that overlap another tag's, e.g. a uint32 and a uint16 inside
    it, go to a further Struct), then each tag gets its value: scale and offset applied, bits
    masked, strings cut at NUL. Coils and discrete inputs are picked by index. A response it
    cannot take whole goes to `decode_tag`, which judges each tag with its own one-tag plan.
    """

    def __init__(
        self, table: RegisterKind, address: int, count: int, tags: Sequence[ModbusTag]
    ) -> None:
        self.table = table
        self.count = count
        self.is_bits = table.is_bit
        self._tags = tuple(tags)
        self._singles: list[RequestDecoder] | None = None  # one-tag plans, made when needed
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
            tag.type in _FLOATS or what == _NUMBER
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
            elif tag.type in _FLOATS or tag.scale != 1.0 or tag.offset != 0.0:
                self._steps.append((_NUMBER, index, tag.scale, tag.offset))
            else:  # an integer as is: float(raw) * 1.0 + 0.0 == float(raw) exactly
                self._steps.append((_PLAIN, index, 1.0, 0.0))

    def decode(self, data: Response) -> Decoded:
        """Each tag's value (None for strings) and text.

        Raises struct.error or DecodeError for a response it cannot take whole (short or long,
        or register values outside 0..65535): the caller then uses `decode_tag`.
        """
        if self.is_bits:
            if len(data) < self.count:
                raise DecodeError(f"asked {self.count} bits, got {len(data)}")
            return Decoded([1.0 if data[i] else 0.0 for _, i, _, _ in self._steps], None)
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
            return Decoded(list(map(float, raw)), None)
        values: list[float | None] = []
        texts: list[str | None] | None = [] if self.has_text else None
        for what, index, a, b in self._steps:
            v = raw[index]
            if what == _PLAIN:
                values.append(float(v))
            elif what == _NUMBER:
                values.append(float(v) * a + b)
            elif what == _BIT:
                values.append(1.0 if v & a else 0.0)
            elif what == _FLAG:
                values.append(1.0 if v else 0.0)
            else:
                values.append(None)
            if texts is not None:
                texts.append(_text(v) if what == _TEXT else None)
        return Decoded(values, texts)

    def decode_tag(self, index: int, part: Response) -> TagValue:
        """Tag `index` alone, from its own registers or bit (`ReadRequest.slice_for`), for a
        response `decode` cannot take whole: register values beyond 16 bits keep their low 16
        (all the wire can carry); DecodeError when the response lacks some of them."""
        if self._singles is None:
            self._singles = [
                RequestDecoder(self.table, t.address, t.register_count, [t]) for t in self._tags
            ]
        single = self._singles[index]
        if len(part) < single.count:
            unit = "bits" if self.is_bits else "registers"
            what = self._tags[index].type.value
            raise DecodeError(f"{what} needs {single.count} {unit}, got {len(part)}")
        values, texts = single.decode(part if self.is_bits else [int(w) & 0xFFFF for w in part])
        return values[0], texts[0] if texts else None
