"""Sparkplug B payloads: the simulator's hand-written encoder against the adapter's protobuf
decoder (two implementations of the spec's field table checking each other), value conversion
by datatype, and what is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.base import Quality
from adapters.errors import DecodeError
from adapters.sparkplug.payload import (
    REBIRTH_METRIC,
    Unsupported,
    alias_of,
    convert,
    decode,
    encode_rebirth,
    name_of,
    quality,
)
from adapters.sparkplug.schema import payload_class
from simulators.frontends import sparkplug_wire as wire
from simulators.frontends.sparkplug_wire import WireMetric, encode_payload, true_booleans

T = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z

# (datatype, value sent, value read, text read)
CASES = [
    (wire.INT8, -7, -7.0, None),
    (wire.INT8, 127, 127.0, None),
    (wire.INT16, -32768, -32768.0, None),
    (wire.INT32, -1, -1.0, None),
    (wire.INT32, 2_147_483_647, 2_147_483_647.0, None),
    (wire.INT64, -5, -5.0, None),
    (wire.UINT8, 255, 255.0, None),
    (wire.UINT16, 65535, 65535.0, None),
    (wire.UINT32, 4_294_967_295, 4_294_967_295.0, None),
    (wire.UINT64, 2**53, float(2**53), None),
    (wire.FLOAT, 1.5, 1.5, None),
    (wire.DOUBLE, 0.1, 0.1, None),
    (wire.BOOLEAN, True, 1.0, None),
    (wire.BOOLEAN, False, 0.0, None),
    (wire.STRING, "Auto ☂", None, "Auto ☂"),
    (wire.DATETIME, T, float(T), "2026-01-01T00:00:00.123000+00:00"),
]


@pytest.mark.parametrize(("datatype", "sent", "value", "text"), CASES)
def test_each_type_round_trips(
    datatype: int, sent: object, value: float | None, text: str | None
) -> None:
    data = encode_payload(T, 7, [WireMetric("m", 3, T + 1, datatype, sent)])  # type: ignore[arg-type]
    p = decode(data)
    assert (p.timestamp_ms, p.seq) == (T, 7)
    (m,) = p.metrics
    assert (m.name, m.alias, m.timestamp, m.datatype) == ("m", 3, T + 1, datatype)
    assert convert(m.datatype, m) == (value, text)


def test_alias_only_metric_uses_the_birth_datatype() -> None:
    """Data messages leave the datatype out: the birth's type decides the sign."""
    data = encode_payload(T, 1, [WireMetric(None, 9, T, None, -3, value_type=wire.INT16)])
    (m,) = decode(data).metrics
    assert (name_of(m), alias_of(m), m.HasField("datatype")) == (None, 9, False)
    assert convert(wire.INT16, m) == (-3.0, None)
    assert convert(wire.UINT16, m) == (65533.0, None)


def test_sign_extended_int32_from_64_bits_is_read_by_its_width() -> None:
    """A sender that sign-extends -2 to 64 bits: protobuf truncates to uint32, masking does the
    rest."""
    p = payload_class()()
    m = p.metrics.add()
    m.name, m.datatype, m.int_value = "x", wire.INT32, 0xFFFFFFFE
    (got,) = decode(p.SerializeToString()).metrics
    assert convert(got.datatype, got) == (-2.0, None)


def test_null_historical_and_quality_property() -> None:
    p = payload_class()()
    m = p.metrics.add()
    m.name, m.datatype, m.is_null, m.is_historical = "n", wire.DOUBLE, True, True
    q = p.metrics.add()
    q.name, q.datatype, q.double_value = "q", wire.DOUBLE, 2.0
    q.properties.keys.append("Quality")
    prop = q.properties.values.add()
    prop.type, prop.int_value = 3, 0
    null, bad = decode(p.SerializeToString()).metrics
    assert (null.is_null, null.is_historical, null.WhichOneof("value")) == (True, True, None)
    assert (quality(null), quality(bad)) == (Quality.GOOD, Quality.BAD)
    assert convert(bad.datatype, bad) == (2.0, None)


def test_datasets_templates_and_bytes_are_unsupported() -> None:
    p = payload_class()()
    d = p.metrics.add()
    d.name, d.datatype = "ds", 16
    d.dataset_value.num_of_columns = 1
    b = p.metrics.add()
    b.name, b.datatype, b.bytes_value = "raw", 17, b"\x01"
    for m in decode(p.SerializeToString()).metrics:
        with pytest.raises(Unsupported):
            convert(m.datatype, m)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xff\xff", "not a Sparkplug B payload"),
        (encode_payload(T, 256, []), "seq 256 is above 255"),
    ],
)
def test_refused(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        decode(data)


def test_rebirth_request_is_read_by_the_simulator() -> None:
    now = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    data = encode_rebirth(now)
    assert true_booleans(data) == [REBIRTH_METRIC]
    p = decode(data)
    assert (p.timestamp_ms, p.seq) == (now, None)
