"""The bulk request decoder pinned against the per-tag codec.

`RequestDecoder` decodes a whole response with one struct unpack per byte source and order;
`oracles.decode(tag, slice)` is the reference. Every case decodes the same registers both ways and
also checks the exact expected values, so a wrong reference cannot hide a wrong bulk path.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import pytest

from adapters.base import Quality, Reading
from adapters.errors import DecodeError
from adapters.modbus import ModbusAdapter
from adapters.modbus.codec import RequestDecoder, bulk_field
from adapters.modbus.planner import ReadRequest, plan
from config.sources.modbus import ByteOrder, DataType, ModbusSource, ModbusTag, RegisterKind
from tests.adapters.oracles import decode, encode

TS = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
NUMBERS = [t for t in DataType if t.is_number]


def tag(address: int, **options: Any) -> ModbusTag:
    name = options.pop("name", f"t{address}_{len(options)}")
    return ModbusTag.model_validate({"machine": "m", "name": name, "address": address, **options})


def request(*tags: ModbusTag, max_gap: int = 8) -> ReadRequest:
    """The planner's one request for `tags` (the test fails if they do not share one)."""
    (only,) = plan([(1, t) for t in tags], max_gap=max_gap)
    return only


def image(req: ReadRequest, values: dict[ModbusTag, Any], fill: int = 0xA5A5) -> list[int]:
    """The registers a device answers `req` with: each tag's value encoded, `fill` in gaps."""
    regs = [fill] * req.count
    for t, v in values.items():
        start = t.address - req.address
        regs[start : start + t.register_count] = encode(t, v)
    return regs


def per_tag(req: ReadRequest, data: list[int] | list[bool]) -> list[tuple[float | None, Any]]:
    return [decode(t, req.slice_for(t, data)) for t in req.tags]


def bulk(req: ReadRequest, data: list[int] | list[bool]) -> list[tuple[float | None, Any]]:
    values, texts = req.decoder.decode(data)
    return list(zip(values, texts or [None] * len(values), strict=True))


def same(a: list[tuple[float | None, Any]], b: list[tuple[float | None, Any]]) -> bool:
    """Equal, NaN equal to NaN, and the sign of zero kept (repr tells -0.0 from 0.0)."""
    return [(repr(v), t) for v, t in a] == [(repr(v), t) for v, t in b]


# --- every type and order, values with a sign, gaps between tags, a tag at the end -------------

VALUES: dict[DataType, list[Any]] = {
    DataType.INT16: [-12345, 0, 32767],
    DataType.UINT16: [54321, 0, 1],
    DataType.INT32: [-123456789, 2**31 - 1, -1],
    DataType.UINT32: [4_000_000_000, 0x01020304, 7],
    DataType.INT64: [-(2**62) - 7, -1, 2**53 + 2],
    DataType.UINT64: [2**63 + 11, 0x0102030405060708, 0],
    DataType.FLOAT32: [-1.5, 12.5, -0.0],
    DataType.FLOAT64: [-1e300, 0.1, -0.0],
}


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", NUMBERS)
def test_every_number_type_and_order_with_gaps(data_type: DataType, order: ByteOrder) -> None:
    width = tag(0, type=data_type.value).register_count
    # three tags of the type with gaps of 0, 1 and 3 registers; a uint16 between; the last
    # tag ends the request exactly.
    a = tag(0, type=data_type.value, byte_order=order.value)
    b = tag(width, type=data_type.value, byte_order=order.value)
    mid = tag(2 * width + 1, name="mid", type="int16", byte_order=order.value)
    c = tag(2 * width + 5, type=data_type.value, byte_order=order.value)
    req = request(a, b, mid, c)
    assert req.address + req.count == c.address + c.register_count
    written = dict(zip((a, b, c), VALUES[data_type], strict=True)) | {mid: -2}
    data = image(req, written)
    got = bulk(req, data)
    assert same(got, per_tag(req, data))
    expected = [float(written[t]) for t in (a, b)] + [-2.0, float(written[c])]
    if data_type is DataType.FLOAT32:  # -1.5 and 12.5 are exact in float32
        expected = [-1.5, 12.5, -2.0, -0.0]
    if data_type in (DataType.FLOAT32, DataType.FLOAT64):
        expected[3] = 0.0  # -0.0 * scale 1.0 + offset 0.0: the codec gives 0.0, and so do we
    assert [(repr(v), t) for v, t in got] == [(repr(v), None) for v in expected]


@pytest.mark.parametrize("order", list(ByteOrder))
def test_the_field_each_order_reads(order: ByteOrder) -> None:
    """Which byte source and struct order each width takes (ABCD/DCBA as sent, BADC/CDAB swapped)."""
    one = bulk_field(tag(0, type="int16", byte_order=order.value))
    two = bulk_field(tag(0, type="float32", byte_order=order.value))
    four = bulk_field(tag(0, type="uint64", byte_order=order.value))
    text = bulk_field(tag(0, type="string", length=3, byte_order=order.value))
    expected = {
        ByteOrder.ABCD: ((False, ">", "h"), (False, ">", "f"), (False, ">", "Q"), (False, "6s")),
        ByteOrder.CDAB: ((False, ">", "h"), (True, "<", "f"), (True, "<", "Q"), (False, "6s")),
        ByteOrder.BADC: ((False, "<", "h"), (True, ">", "f"), (True, ">", "Q"), (True, "6s")),
        ByteOrder.DCBA: ((False, "<", "h"), (False, "<", "f"), (False, "<", "Q"), (True, "6s")),
    }[order]
    assert (one, two, four, (text[0], text[2])) == expected


@pytest.mark.parametrize("seed", range(20))
def test_random_registers_decode_alike(seed: int) -> None:
    """Any register contents (NaN and infinity patterns, negative numbers) decode the same."""
    rng = random.Random(seed)
    tags, address = [], 0
    for i in range(40):
        data_type = rng.choice([*NUMBERS, DataType.STRING, DataType.BOOL])
        options: dict[str, Any] = {
            "name": f"r{i}",
            "type": data_type.value,
            "byte_order": rng.choice(list(ByteOrder)).value,
        }
        if data_type is DataType.STRING:
            options["length"] = rng.randint(1, 4)
        elif data_type is DataType.BOOL and rng.random() < 0.7:
            options["bit"] = rng.randint(0, 15)
        elif data_type.is_number and rng.random() < 0.3:
            options.update(scale=rng.choice([0.1, -2.0, 1e-3]), offset=rng.choice([0.0, -50.0]))
        t = tag(address, **options)
        if address + t.register_count > 125:
            break
        tags.append(t)
        address += t.register_count + rng.choice([0, 0, 1, 3])
    req = request(*tags)
    specials = [0x7FC0, 0x7F80, 0xFF80, 0xFFFF, 0x8000, 0x0000, 0x7FF0]
    for _ in range(10):
        data = [
            rng.choice(specials) if rng.random() < 0.3 else rng.randrange(65536)
            for _ in range(req.count)
        ]
        assert same(bulk(req, data), per_tag(req, data))


# --- overlaps, bits, strings, scale, NaN ----------------------------------------------------


def test_overlapping_tags_bits_and_flags_of_one_register() -> None:
    """Two tags on the same registers, bits inside a request: each reads its own field."""
    whole = tag(2, name="whole", type="uint32")
    low = tag(3, name="low")  # the low word of `whole`
    flag = tag(3, name="flag", type="bool")  # the same register, read as "not 0"
    bits = [tag(5, name=f"b{b}", type="bool", bit=b) for b in (0, 3, 15)]
    swapped_bit = tag(5, name="sb", type="bool", bit=8, byte_order="BADC")
    last = tag(6, name="last", type="int16")
    req = request(whole, low, flag, *bits, swapped_bit, last)
    assert (req.address, req.count) == (2, 5)
    data = [0x0001, 0x8002, 0xFFFF, 0x8009, 0xFFFE]
    assert same(bulk(req, data), per_tag(req, data))
    assert [v for v, _ in bulk(req, data)] == [
        float(0x00018002),
        float(0x8002),
        1.0,
        1.0,  # bit 0 of 0x8009
        1.0,  # bit 3
        1.0,  # bit 15
        1.0,  # BADC: 0x8009 -> 0x0980, bit 8 set
        -2.0,
    ]
    assert len(req.decoder._structs) > 1  # the overlapping fields needed a second layer


def test_strings_scale_and_nan_inside_a_request() -> None:
    name = tag(0, name="lot", type="string", length=3)
    swapped = tag(3, name="lot_badc", type="string", length=2, byte_order="BADC")
    torque = tag(5, name="torque", type="int16", scale=0.1, offset=-50)
    temp = tag(6, name="temp", type="float32", byte_order="CDAB")
    nan = tag(8, name="nan", type="float32")
    inf = tag(10, name="inf", type="float64", byte_order="DCBA")
    req = request(name, swapped, torque, temp, nan, inf)
    data = image(req, {name: "LOT-7", swapped: "AB", torque: -12.5, temp: 21.5, inf: math.inf})
    data[8:10] = [0x7FC0, 0x0000]  # a float32 quiet NaN
    assert same(bulk(req, data), per_tag(req, data))
    values, texts = req.decoder.decode(data)
    assert texts == ["LOT-7", "AB", None, None, None, None]
    assert values[:4] == [None, None, pytest.approx(-12.5), 21.5]
    assert math.isnan(values[4]) and values[5] == math.inf  # type: ignore[arg-type]
    assert (req.decoder.has_text, req.decoder.checks_finite, req.decoder.plain) == (
        True,
        True,
        False,
    )


def test_plain_integers_take_the_shortest_path() -> None:
    tags = [tag(a, name=f"p{a}", type="int16" if a % 2 else "uint16") for a in range(125)]
    req = request(*tags)
    data = [(0xFFFF - a) for a in range(125)]
    assert (req.decoder.plain, req.decoder.checks_finite, req.decoder.has_text) == (
        True,
        False,
        False,
    )
    assert same(bulk(req, data), per_tag(req, data))
    assert req.decoder.decode(data)[0][:3] == [65535.0, -2.0, 65533.0]


def test_coils_and_discrete_inputs_by_index() -> None:
    coils = [tag(a, name=f"c{a}", register="coil", type="bool") for a in (10, 11, 15, 40)]
    req = request(*coils, max_gap=100)
    data = [bool(i % 3) for i in range(req.count)]
    assert same(bulk(req, data), per_tag(req, data))
    assert [v for v, _ in bulk(req, data)] == [0.0, 1.0, 1.0, 0.0]
    with pytest.raises(DecodeError, match="asked 31 bits, got 30"):
        req.decoder.decode(data[:-1])


def test_a_response_the_bulk_path_cannot_take_raises() -> None:
    req = request(tag(0), tag(1, type="uint32"))
    with pytest.raises(Exception, match="pack expected 3 items"):
        req.decoder.decode([1, 2])
    with pytest.raises(Exception, match="format requires 0 <= number <= 65535"):
        req.decoder.decode([1, 2, 0x10000])


def test_a_tag_outside_its_request_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"m\.far: holding_register 9\+2 is not within"):
        RequestDecoder(RegisterKind.HOLDING_REGISTER, 0, 10, [tag(9, name="far", type="int32")])
    with pytest.raises(ValueError, match="coil 0\\+1 is not within the request's holding"):
        RequestDecoder(RegisterKind.HOLDING_REGISTER, 0, 10, [tag(0, register="coil")])


def test_split_requests_carry_their_own_plan() -> None:
    a, b = tag(0, name="a", type="float32"), tag(4, name="b", byte_order="BADC")
    merged = request(a, b)
    singles = [ReadRequest(1, t.table, t.address, t.register_count, (t,)) for t in (a, b)]
    assert merged.addresses == (a.reading_address, b.reading_address)
    assert [s.addresses for s in singles] == [(a.reading_address,), (b.reading_address,)]
    assert singles[1].decoder.decode([0x3412])[0] == [float(0x1234)]
    assert merged == ReadRequest(1, a.table, 0, 5, (a, b))  # the plan is not part of equality


# --- the adapter: readings from the bulk path equal the per-tag path's ----------------------


def adapter(tags: list[ModbusTag]) -> ModbusAdapter:
    async def sink(_: Any) -> None:
        return None

    src = ModbusSource.model_validate(
        {"protocol": "modbus", "name": "plc", "host": "127.0.0.1", "tags": tags}
    )
    return ModbusAdapter(src, sink)


def test_adapter_readings_bad_for_nan_text_for_strings() -> None:
    tags = [
        tag(0, name="state"),
        tag(1, name="temp", type="float32"),
        tag(3, name="lot", type="string", length=2),
        tag(5, name="door", type="bool", bit=4),
    ]
    ad = adapter(tags)
    ((req,),) = ad.schedule.values()
    data = [3, 0x7F80, 0x0000, 0x4142, 0x4300, 0x0010]  # temp = +inf
    readings = ad._decode(req, data, TS)
    assert readings == ad._decode_per_tag(req, data, TS)
    assert readings == [
        Reading("plc", "/holding_register/0/uint16/ABCD", TS, 3.0, Quality.GOOD, None),
        Reading("plc", "/holding_register/1/float32/ABCD", TS, None, Quality.BAD, None),
        Reading("plc", "/holding_register/3/string[2]/ABCD", TS, None, Quality.GOOD, "ABC"),
        Reading("plc", "/holding_register/5.4/bool/ABCD", TS, 1.0, Quality.GOOD, None),
    ]
    assert ad.status.errors == 0


def test_adapter_falls_back_per_tag_for_a_short_response() -> None:
    """A short answer decodes tag by tag as before: what is missing is BAD and counted."""
    ad = adapter([tag(0, name="a"), tag(1, name="b", type="uint32")])
    ((req,),) = ad.schedule.values()
    readings = ad._decode(req, [7, 8], TS)
    assert [(r.value, r.quality) for r in readings] == [(7.0, Quality.GOOD), (None, Quality.BAD)]
    assert ad.status.errors == 1
    assert ad.status.last_error == "uint32 needs 2 registers, got 1"


def test_adapter_falls_back_per_tag_for_registers_out_of_range() -> None:
    """Register values a device cannot send are masked to 16 bits by the codec, as before."""
    ad = adapter([tag(0, name="a"), tag(1, name="b", type="int16")])
    ((req,),) = ad.schedule.values()
    readings = ad._decode(req, [0x10005, -1], TS)
    assert readings == ad._decode_per_tag(req, [0x10005, -1], TS)
    assert [r.value for r in readings] == [5.0, -1.0]
    assert ad.status.errors == 0
