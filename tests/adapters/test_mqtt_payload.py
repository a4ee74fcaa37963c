"""Payload decoding, table-driven: (payload, field, expected value, expected text).

Every case runs through the product's `Decoder` and through the plain reference in
oracles.py, which must agree, results and errors alike, field by field: a field that fails
gives its error (`MissingField` when the payload lacks it) and the others their values.
"""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.errors import DecodeError
from adapters.mqtt.payload import (
    Columns,
    Decoder,
    FieldSpec,
    MissingField,
    get_path,
    parse_timestamp,
)
from tests.adapters.oracles import Row, decode_payload, rows

UTC = dt.UTC


def decode(payload: bytes, specs: list[FieldSpec]) -> list[Row | DecodeError]:
    """The product's decoding as rows (or each field's DecodeError), checked against the
    reference's."""
    got = rows(Decoder(specs)(payload))
    assert _outcomes(got) == _outcomes(decode_payload(payload, specs))
    return got


VALUE_CASES = [
    (b"42", None, 42.0, None),
    (b" 42.5\n", None, 42.5, None),
    (b"-1e3", None, -1000.0, None),
    (b"true", None, 1.0, None),
    (b"OFF", None, 0.0, None),
    (b"RUNNING", None, None, "RUNNING"),
    (b'{"state": 1}', "state", 1.0, None),
    (b'{"a": {"b": [10, {"c": 7.25}]}}', "a.b.1.c", 7.25, None),
    (b'{"a": [1, 2, 3]}', "a.-1", 3.0, None),
    (b'{"ok": false}', "ok", 0.0, None),
    (b'{"mode": "auto"}', "mode", None, "auto"),
    (b'{"v": "12.5"}', "v", 12.5, None),  # numbers sent as strings are numbers
    ('{"t": "Temperatur hoch: 90 °C"}'.encode(), "t", None, "Temperatur hoch: 90 °C"),
]


@pytest.mark.parametrize(("payload", "field", "value", "text"), VALUE_CASES)
def test_decode_value(
    payload: bytes, field: str | None, value: float | None, text: str | None
) -> None:
    [(got_value, got_text, ts)] = decode(payload, [FieldSpec(field)])
    assert (got_value, got_text, ts) == (value, text, None)
    assert got_value is None or type(got_value) is float


MALFORMED_CASES = [
    (b"", None),
    (b"   ", None),
    (b"\xff\xfe", None),
    (b"nan", None),
    (b"{not json", "a"),
    (b'{"a": [1]}', "a.x"),
    (b'{"a": 1}', "a.b"),
    (b'{"a": null}', "a"),
    (b'{"a": {"b": 1}}', "a"),
    (b'{"a": [1, 2]}', "a"),
    (b"[1, 2]", "a"),
    (b"42", "a"),
    (b'"text"', "a"),
    (b'{"a": 1e999}', "a"),
    (b"[" * 10_000 + b"]" * 10_000, "a"),  # RecursionError killed the source (issue 11)
    (b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, "a"),
]


@pytest.mark.parametrize(("payload", "field"), MALFORMED_CASES)
def test_decode_malformed(payload: bytes, field: str | None) -> None:
    [got] = decode(payload, [FieldSpec(field)])
    assert isinstance(got, DecodeError) and not isinstance(got, MissingField), got


# The payload lacks the field (no key, a list too short): missing, not malformed (issue 14).
MISSING_CASES = [
    (b'{"a": 1}', "b"),
    (b"{}", "a"),
    (b'{"a": [1]}', "a.3"),
    (b'{"a": [1]}', "a.-2"),
    (b'{"a": {"c": 1}}', "a.b"),
    (b"[7, 8]", "2"),
]


@pytest.mark.parametrize(("payload", "field"), MISSING_CASES)
def test_decode_missing(payload: bytes, field: str) -> None:
    [got] = decode(payload, [FieldSpec(field)])
    assert isinstance(got, MissingField), got


TS_CASES = [
    ("2026-03-01T08:00:00Z", "iso8601", dt.datetime(2026, 3, 1, 8, tzinfo=UTC)),
    (
        "2026-03-01T09:00:00.250+01:00",
        "iso8601",
        dt.datetime(2026, 3, 1, 8, 0, 0, 250000, tzinfo=UTC),
    ),
    ("2026-03-01 08:00:00", "iso8601", dt.datetime(2026, 3, 1, 8, tzinfo=UTC)),  # naive: UTC
    (1772352000, "epoch_s", dt.datetime(2026, 3, 1, 8, tzinfo=UTC)),
    (1772352000.5, "epoch_s", dt.datetime(2026, 3, 1, 8, 0, 0, 500000, tzinfo=UTC)),
    (1772352000250, "epoch_ms", dt.datetime(2026, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)),
    ("1772352000250", "epoch_ms", dt.datetime(2026, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)),
]


@pytest.mark.parametrize(("raw", "fmt", "expected"), TS_CASES)
def test_parse_timestamp(raw: object, fmt: str, expected: dt.datetime) -> None:
    got = parse_timestamp(raw, fmt)  # type: ignore[arg-type]
    assert got == expected
    assert got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("raw", "fmt"),
    [
        ("yesterday", "iso8601"),
        (5, "iso8601"),
        ("soon", "epoch_s"),
        (True, "epoch_ms"),
        (1e300, "epoch_s"),
        (None, "epoch_s"),
        # beyond year 1 and 9999 once in UTC: OverflowError killed the source (issue 11)
        ("0001-01-01T00:30:00+01:00", "iso8601"),
        ("9999-12-31T23:59:59-01:00", "iso8601"),
        (-1e20, "epoch_ms"),
        (10**400, "epoch_ms"),  # found by tests/collector/test_fuzz_mqtt.py
    ],
)
def test_parse_timestamp_malformed(raw: object, fmt: str) -> None:
    with pytest.raises(DecodeError):
        parse_timestamp(raw, fmt)  # type: ignore[arg-type]


def test_decode_with_timestamp() -> None:
    [(value, text, ts)] = decode(
        b'{"d": {"v": 3}, "ts": 1772352000000}',
        [FieldSpec("d.v", timestamp_field="ts", timestamp_format="epoch_ms")],
    )
    assert (value, text, ts) == (3.0, None, dt.datetime(2026, 3, 1, 8, tzinfo=UTC))


def test_get_path_top_level_list() -> None:
    assert get_path([{"a": 1}, {"a": 2}], "1.a") == 2


GATEWAY = [FieldSpec(f, timestamp_field="ts", timestamp_format="epoch_ms") for f in ("a", "b")]
T0 = dt.datetime(2026, 3, 1, 8, tzinfo=UTC)

# (specs, payload): the Decoder must give exactly what the reference gives, or the same error.
DECODER_CASES = [
    (GATEWAY, b'{"ts": 1772352000000, "a": 1.5, "b": 2.5}'),  # the short path
    (GATEWAY, b'{"ts": 1772352000000, "a": 3, "b": true}'),  # int, bool
    (GATEWAY, b'{"ts": 1772352000000, "a": "12.5", "b": "auto"}'),  # strings
    (GATEWAY, b'{"ts": 1772352000000, "a": " 1e3 ", "b": "ON"}'),  # number text, bool text
    (GATEWAY, b'{"ts": 1772352000000, "a": "nan", "b": 1}'),  # text that is no finite number
    (GATEWAY, b'{"ts": 1772352000000, "a": null, "b": 1}'),
    (GATEWAY, b'{"ts": 1772352000000, "a": 1' + b"0" * 400 + b', "b": 1}'),  # beyond floats
    (GATEWAY, b'{"ts": 1772352000000, "a": 1e308, "b": 1e308}'),  # finite, their sum is not
    (GATEWAY, b'{"ts": 1772352000000, "a": 1.5}'),  # b missing
    (GATEWAY, b'{"ts": 1772352000000, "b": "x"}'),  # a missing, b text
    (GATEWAY, b'{"ts": 1772352000000}'),  # neither: both missing
    (GATEWAY, b'{"a": 1.5}'),  # b missing, a without its timestamp
    (GATEWAY, b'{"ts": 1772352000000, "a": null, "b": 2.5}'),  # a wrong type, b stored
    (GATEWAY, b'{"ts": 1772352000000, "a": {"x": 1}}'),  # a wrong type, b missing
    (GATEWAY, b'{"a": 1.5, "b": 2.5}'),  # no timestamp
    (GATEWAY, b'{"ts": "soon", "a": 1.5, "b": 2.5}'),  # bad timestamp
    (GATEWAY, b'{"ts": 1772352000000, "a": NaN, "b": 2.5}'),
    (GATEWAY, b'{"ts": 1772352000000, "a": [1], "b": 2.5}'),
    (GATEWAY, b"[1, 2]"),
    (GATEWAY, b"42"),
    (GATEWAY, b"{not json"),
    (GATEWAY, b'\xef\xbb\xbf{"ts": 1772352000000, "a": 1.5, "b": 2.5}'),  # BOM: not plain UTF-8
    ([FieldSpec("a"), FieldSpec("b")], b'{"a": 1.5, "b": 2.5}'),  # short path, arrival time
    ([FieldSpec("0")], b"[7, 8]"),  # a key that is a list index: the general path reads it
    ([FieldSpec("d.v"), FieldSpec("a")], b'{"d": {"v": 3}, "a": 4}'),  # a path: general
    ([FieldSpec(None)], b"41.5"),  # plain payload: general
    (
        [FieldSpec("a", "ts"), FieldSpec("b", "t2")],
        b'{"a": 1, "b": 2, "ts": "2026-03-01", "t2": 5}',
    ),
    # the value rule at its edges: words, number text float() reads, what is no finite number
    ([FieldSpec("a"), FieldSpec("b")], b'{"a": " On ", "b": "off"}'),
    ([FieldSpec("a"), FieldSpec("b")], b'{"a": "1_000", "b": " -0 "}'),
    ([FieldSpec("a")], b'{"a": "Infinity"}'),
    ([FieldSpec("a")], b'{"a": "0x10"}'),
    ([FieldSpec("a")], b'{"a": false}'),
    ([FieldSpec(None)], b"1e999"),
    ([FieldSpec(None)], b" OFF "),
    ([FieldSpec(None)], b"-Infinity"),
]


def _outcomes(got: list[Row | DecodeError]) -> list[object]:
    """Rows as they are, errors as (their type, their text): comparable."""
    return [(type(r).__name__, str(r)) if isinstance(r, DecodeError) else r for r in got]


@pytest.mark.parametrize(("specs", "payload"), DECODER_CASES)
def test_decoder_is_decode(specs: list[FieldSpec], payload: bytes) -> None:
    expected = _outcomes(decode_payload(payload, specs))
    assert _outcomes(rows(Decoder(specs)(payload))) == expected


def test_decoder_short_path_values() -> None:
    got = Decoder(GATEWAY)(b'{"ts": 1772352000000, "a": 1.5, "b": "x"}')
    assert got == Columns([1.5, None], [None, "x"], [T0, T0])
    got = Decoder(GATEWAY)(b'{"ts": 1772352000000, "a": 3, "b": true}')
    assert got == Columns([3.0, 1.0], None, [T0, T0])  # numbers only: no text column
    assert got.errors is None  # every field decoded


def test_decoder_keeps_the_fields_present() -> None:
    """issue 14: a gateway that publishes only what changed. `a` decodes; `b` is missing."""
    values, texts, stamps, errors = Decoder(GATEWAY)(b'{"ts": 1772352000000, "a": 1.5}')
    assert (values, texts, stamps) == ([1.5, None], None, [T0, None])
    assert errors is not None and errors[0] is None
    assert isinstance(errors[1], MissingField) and str(errors[1]) == "no field 'b' (path 'b')"


def test_decoder_a_wrong_type_spoils_only_its_field() -> None:
    values, texts, stamps, errors = Decoder(GATEWAY)(b'{"ts": 1772352000000, "a": [1], "b": 2}')
    assert (values, texts, stamps) == ([None, 2.0], None, [None, T0])
    assert errors is not None and errors[1] is None
    assert type(errors[0]) is DecodeError and "got list" in str(errors[0])


def test_decoder_a_missing_timestamp_is_no_missing_field() -> None:
    """The value is there and cannot be placed in time: malformed, not missing."""
    got = Decoder(GATEWAY[:1])(b'{"a": 1.5}')
    assert got.values == [None] and got.errors is not None
    [error] = got.errors
    assert type(error) is DecodeError and str(error) == "no field 'ts' (path 'ts')"


def test_decoder_parses_a_bad_payload_once_for_all_fields() -> None:
    """Not JSON: every field gets the same error (one parse), none is counted missing."""
    specs = [FieldSpec(f) for f in "abc"]
    _, _, _, errors = Decoder(specs)(b"{not json")
    assert errors is not None and len({id(e) for e in errors}) == 1
    assert type(errors[0]) is DecodeError and str(errors[0]).startswith("payload is not JSON")
