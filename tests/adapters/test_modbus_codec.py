"""Codec cases as data: each row is a tag config, the registers a device sends, and the value.

The per-tag reference (tests/adapters/oracles.py) is checked against each row, and so is the
product's `RequestDecoder`, planned for the one tag."""

from __future__ import annotations

import math
from typing import Any

import pytest

from adapters.modbus.codec import RequestDecoder
from config.sources.modbus import ByteOrder, DataType, ModbusTag
from tests.adapters.oracles import decode, decode_raw, encode, encode_raw, to_canonical

ABCD, DCBA, BADC, CDAB = ByteOrder.ABCD, ByteOrder.DCBA, ByteOrder.BADC, ByteOrder.CDAB


def tag(**options: Any) -> ModbusTag:
    return ModbusTag.model_validate({"machine": "m", "name": "t", "address": 0, **options})


# (type, byte_order, registers as sent, value). Bytes of 0x0102_0304 are A=01 B=02 C=03 D=04.
CASES: list[tuple[DataType, ByteOrder, list[int], float | int | str]] = [
    (DataType.UINT16, ABCD, [0x0102], 0x0102),
    (DataType.UINT16, CDAB, [0x0102], 0x0102),
    (DataType.UINT16, BADC, [0x0201], 0x0102),
    (DataType.UINT16, DCBA, [0x0201], 0x0102),
    (DataType.INT16, ABCD, [0xFFFF], -1),
    (DataType.INT16, ABCD, [0x8000], -32768),
    (DataType.INT16, DCBA, [0x00FF], -256),
    (DataType.UINT32, ABCD, [0x0102, 0x0304], 0x01020304),
    (DataType.UINT32, CDAB, [0x0304, 0x0102], 0x01020304),
    (DataType.UINT32, BADC, [0x0201, 0x0403], 0x01020304),
    (DataType.UINT32, DCBA, [0x0403, 0x0201], 0x01020304),
    (DataType.INT32, ABCD, [0xFFFF, 0xFFFE], -2),
    (DataType.INT32, CDAB, [0xFFFE, 0xFFFF], -2),
    (DataType.INT32, BADC, [0xFFFF, 0xFEFF], -2),
    (DataType.INT32, DCBA, [0xFEFF, 0xFFFF], -2),
    (DataType.UINT64, ABCD, [0x0102, 0x0304, 0x0506, 0x0708], 0x0102030405060708),
    (DataType.UINT64, CDAB, [0x0708, 0x0506, 0x0304, 0x0102], 0x0102030405060708),
    (DataType.UINT64, BADC, [0x0201, 0x0403, 0x0605, 0x0807], 0x0102030405060708),
    (DataType.UINT64, DCBA, [0x0807, 0x0605, 0x0403, 0x0201], 0x0102030405060708),
    (DataType.INT64, ABCD, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFD], -3),
    (DataType.INT64, CDAB, [0xFFFD, 0xFFFF, 0xFFFF, 0xFFFF], -3),
    (DataType.INT64, DCBA, [0xFDFF, 0xFFFF, 0xFFFF, 0xFFFF], -3),
    # 12.5 = 0x41480000; -1.5 = 0xBFC00000
    (DataType.FLOAT32, ABCD, [0x4148, 0x0000], 12.5),
    (DataType.FLOAT32, CDAB, [0x0000, 0x4148], 12.5),
    (DataType.FLOAT32, BADC, [0x4841, 0x0000], 12.5),
    (DataType.FLOAT32, DCBA, [0x0000, 0x4841], 12.5),
    (DataType.FLOAT32, ABCD, [0xBFC0, 0x0000], -1.5),
    (DataType.FLOAT32, CDAB, [0x0000, 0xBFC0], -1.5),
    # -2.25 = 0xC002000000000000
    (DataType.FLOAT64, ABCD, [0xC002, 0, 0, 0], -2.25),
    (DataType.FLOAT64, CDAB, [0, 0, 0, 0xC002], -2.25),
    (DataType.FLOAT64, BADC, [0x02C0, 0, 0, 0], -2.25),
    (DataType.FLOAT64, DCBA, [0, 0, 0, 0x02C0], -2.25),
    # strings: characters in register order; BADC/DCBA swap the bytes of each register
    (DataType.STRING, ABCD, [0x4142, 0x4300], "ABC"),
    (DataType.STRING, CDAB, [0x4142, 0x4300], "ABC"),
    (DataType.STRING, BADC, [0x4241, 0x0043], "ABC"),
    (DataType.STRING, DCBA, [0x4241, 0x0043], "ABC"),
    (DataType.STRING, ABCD, [0x4F4B, 0x0000, 0x5858], "OK"),  # stops at the first NUL
]


@pytest.mark.parametrize(
    ("data_type", "order", "registers", "value"),
    CASES,
    ids=[f"{c[0].value}-{c[1].value}-{i}" for i, c in enumerate(CASES)],
)
def test_decode_raw(
    data_type: DataType, order: ByteOrder, registers: list[int], value: float | int | str
) -> None:
    assert decode_raw(registers, data_type, order) == value


@pytest.mark.parametrize(
    ("data_type", "order", "registers", "value"),
    [c for c in CASES if c[2][-1] != 0x5858],
    ids=[f"{c[0].value}-{c[1].value}-{i}" for i, c in enumerate(CASES) if c[2][-1] != 0x5858],
)
def test_encode_raw_is_the_inverse(
    data_type: DataType, order: ByteOrder, registers: list[int], value: float | int | str
) -> None:
    assert encode_raw(value, data_type, order, length=len(registers)) == registers


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize(
    ("data_type", "value"),
    [
        (DataType.INT16, -12345),
        (DataType.UINT16, 54321),
        (DataType.INT32, -123456789),
        (DataType.UINT32, 4_000_000_000),
        (DataType.INT64, -(2**62) - 7),
        (DataType.UINT64, 2**63 + 11),
        (DataType.FLOAT32, 0.1),
        (DataType.FLOAT64, -1e300),
        (DataType.STRING, "Cap-7 ü"),
    ],
)
def test_round_trip_every_type_and_order(
    data_type: DataType, order: ByteOrder, value: float | int | str
) -> None:
    registers = encode_raw(value, data_type, order, length=8)
    assert all(0 <= r <= 0xFFFF for r in registers)
    back = decode_raw(registers, data_type, order)
    if data_type is DataType.FLOAT32:
        assert math.isclose(back, value, rel_tol=1e-7)  # type: ignore[arg-type]
    else:
        assert back == value


def test_to_canonical_is_its_own_inverse() -> None:
    regs = [0x0102, 0x0304, 0x0506, 0x0708]
    for order in ByteOrder:
        assert to_canonical(to_canonical(regs, order), order) == regs


# (tag options, registers or bits as read, expected (value, text))
TAG_CASES: list[tuple[dict[str, Any], list[int] | list[bool], tuple[float | None, str | None]]] = [
    ({"type": "int16", "scale": 0.1}, [0xFF9C], (-10.0, None)),  # -100 * 0.1
    ({"type": "uint16", "scale": 0.5, "offset": -20}, [100], (30.0, None)),
    ({"type": "float32", "byte_order": "CDAB", "scale": 2, "offset": 1}, [0, 0x4148], (26.0, None)),
    ({"type": "uint32", "byte_order": "CDAB", "scale": 0.001}, [0x86A0, 0x0001], (100.0, None)),
    ({"type": "bool", "bit": 0}, [0x0001], (1.0, None)),
    ({"type": "bool", "bit": 15}, [0x8000], (1.0, None)),
    ({"type": "bool", "bit": 15}, [0x7FFF], (0.0, None)),
    ({"type": "bool", "bit": 3, "byte_order": "BADC"}, [0x0800], (1.0, None)),  # swapped: 0x0008
    ({"type": "bool", "bit": 11, "byte_order": "BADC"}, [0x0800], (0.0, None)),
    ({"type": "uint16", "bit": 1}, [0x0002], (1.0, None)),
    ({"type": "bool"}, [7], (1.0, None)),
    ({"type": "bool"}, [0], (0.0, None)),
    ({"register": "coil", "type": "bool"}, [True], (1.0, None)),
    ({"register": "discrete_input", "type": "bool"}, [False], (0.0, None)),
    ({"type": "string", "length": 3}, [0x4C42, 0x4C2D, 0x3200], (None, "LBL-2")),
]


@pytest.mark.parametrize(
    ("options", "data", "expected"), TAG_CASES, ids=[str(i) for i in range(len(TAG_CASES))]
)
def test_decode_tag(
    options: dict[str, Any], data: list[int] | list[bool], expected: tuple[float | None, str | None]
) -> None:
    t = tag(**options)
    value, text = decode(t, data)
    assert text == expected[1]
    if expected[0] is None:
        assert value is None
    else:
        assert value == pytest.approx(expected[0])
    if not t.table.is_bit:
        assert len(encode(t, expected[0] if expected[1] is None else expected[1])) == len(data)


@pytest.mark.parametrize(
    ("options", "data", "expected"),
    [c for c in TAG_CASES if c[0].get("type") not in ("bool",)],
    ids=[str(i) for i, c in enumerate(TAG_CASES) if c[0].get("type") not in ("bool",)],
)
def test_encode_tag_undoes_scale_and_offset(
    options: dict[str, Any], data: list[int] | list[bool], expected: tuple[float | None, str | None]
) -> None:
    t = tag(**options)
    value = expected[1] if expected[1] is not None else expected[0]
    assert decode(t, encode(t, value)) == decode(t, data)  # type: ignore[arg-type]


def test_nan_is_passed_through_for_the_adapter_to_judge() -> None:
    value, _ = decode(tag(type="float32"), [0x7FC0, 0x0000])
    assert value is not None and math.isnan(value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"type": "string"}, "needs length"),
        ({"type": "int32", "bit": 2}, "bit selects a bit of one register"),
        ({"register": "coil", "type": "int32"}, "holds one bit"),
        ({"register": "coil", "type": "bool", "bit": 1}, "bit selects a bit of a register"),
        ({"type": "bool", "scale": 2}, "scale and offset apply only to numbers"),
        ({"type": "string", "length": 2, "offset": 1}, "scale and offset apply only to numbers"),
        ({"type": "int16", "length": 2}, "length applies only to type string"),
        ({"type": "float64", "address": 65533}, "runs past address 65535"),
    ],
)
def test_tag_shapes_the_codec_cannot_serve_are_config_errors(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tag(**options)


def product(t: ModbusTag, data: list[int] | list[bool]) -> tuple[float | None, str | None]:
    """The product's decoding of one tag: a request plan for that tag alone."""
    values, texts = RequestDecoder(t.table, t.address, t.register_count, [t]).decode(data)
    return values[0], texts[0] if texts else None


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0].value}-{c[1].value}" for c in CASES])
def test_the_request_decoder_reads_every_case(
    case: tuple[DataType, ByteOrder, list[int], float | int | str],
) -> None:
    data_type, order, registers, value = case
    length = {"length": len(registers)} if data_type is DataType.STRING else {}
    t = tag(type=data_type.value, byte_order=order.value, **length)
    expected = (None, value) if isinstance(value, str) else (float(value), None)
    assert product(t, registers) == expected


@pytest.mark.parametrize("case", TAG_CASES)
def test_the_request_decoder_agrees_with_the_reference(
    case: tuple[dict[str, Any], list[int] | list[bool], object],
) -> None:
    options, data, _ = case
    t = tag(**options)
    assert product(t, data) == decode(t, data)
