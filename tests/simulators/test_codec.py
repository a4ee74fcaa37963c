"""Modbus register encoding, checked against pymodbus's own decoder and by hand."""

from __future__ import annotations

import struct

import pytest
from pymodbus.client import AsyncModbusTcpClient

from config.sources.modbus import ModbusTag
from simulators.values import encode_registers

DT = AsyncModbusTcpClient.DATATYPE


def tag(**kw: object) -> ModbusTag:
    return ModbusTag.model_validate({"machine": "m", "name": "temperature", "address": 0, **kw})


@pytest.mark.parametrize(
    ("kw", "value", "registers"),
    [
        ({"type": "uint16"}, 513, [0x0201]),
        ({"type": "int16"}, -2, [0xFFFE]),
        ({"type": "uint32"}, 0x01020304, [0x0102, 0x0304]),
        ({"type": "uint32", "byte_order": "CDAB"}, 0x01020304, [0x0304, 0x0102]),
        ({"type": "uint32", "byte_order": "BADC"}, 0x01020304, [0x0201, 0x0403]),
        ({"type": "uint32", "byte_order": "DCBA"}, 0x01020304, [0x0403, 0x0201]),
        ({"type": "float32"}, 1.5, [0x3FC0, 0x0000]),
        ({"type": "float32", "byte_order": "CDAB"}, 1.5, [0x0000, 0x3FC0]),
        ({"type": "float32", "byte_order": "BADC"}, 1.5, [0xC03F, 0x0000]),
        ({"type": "float32", "byte_order": "DCBA"}, 1.5, [0x0000, 0xC03F]),
        (
            {"type": "uint64", "byte_order": "CDAB"},
            0x0102030405060708,
            [0x0708, 0x0506, 0x0304, 0x0102],
        ),
        ({"type": "uint16", "scale": 0.1}, 23.4, [234]),
        ({"type": "bool"}, True, [1]),
    ],
)
def test_encode(kw: dict, value: float, registers: list[int]) -> None:
    assert encode_registers(tag(**kw), value) == registers


@pytest.mark.parametrize("value", [21.37, -0.5, 1e6, 65535.0])
def test_float32_decodes_with_pymodbus_in_both_word_orders(value: float) -> None:
    f32 = struct.unpack(">f", struct.pack(">f", value))[0]
    abcd = encode_registers(tag(type="float32", byte_order="ABCD"), value)
    cdab = encode_registers(tag(type="float32", byte_order="CDAB"), value)
    assert AsyncModbusTcpClient.convert_from_registers(abcd, DT.FLOAT32, word_order="big") == f32
    assert AsyncModbusTcpClient.convert_from_registers(cdab, DT.FLOAT32, word_order="little") == f32


def test_uint32_counter_decodes_with_pymodbus() -> None:
    regs = encode_registers(tag(type="uint32", byte_order="CDAB"), 4_000_000_000)
    assert AsyncModbusTcpClient.convert_from_registers(regs, DT.UINT32, word_order="little") == (
        4_000_000_000
    )
