"""DataValue conversion and the quality encoding, table-driven."""

from __future__ import annotations

import datetime as dt

import pytest
from asyncua import ua

from adapters.base import Quality
from adapters.errors import DecodeError
from adapters.opcua.values import (
    convert_value,
    from_datavalue,
    pick_timestamp,
    quality_from_status,
    severity,
    status_name,
)

SC = ua.StatusCodes
QUALITY_CASES = [
    (SC.Good, 0, Quality.GOOD),
    (SC.Uncertain, 1, Quality.UNCERTAIN),
    (SC.Bad, 2, Quality.BAD),
    (SC.Good | 0x0400, 0, Quality.GOOD),  # info bits (overflow) are dropped
    (SC.GoodClamped, 0x0030, Quality.GOOD),
    (SC.UncertainLastUsableValue, 0x4090, Quality.UNCERTAIN),
    (SC.UncertainSensorNotAccurate, 0x4093, Quality.UNCERTAIN),
    (SC.BadSensorFailure, 0x808C - 0x10000, Quality.BAD),
    (SC.BadCommunicationError, 0x8005 - 0x10000, Quality.BAD),
    (SC.BadNoCommunication, 0x8031 - 0x10000, Quality.BAD),
    (SC.BadWaitingForInitialData, 0x8032 - 0x10000, Quality.BAD),
    (SC.BadOutOfService, 0x808D - 0x10000, Quality.BAD),
]


@pytest.mark.parametrize(("code", "stored", "level"), QUALITY_CASES)
def test_quality(code: int, stored: int, level: Quality) -> None:
    assert quality_from_status(code) == stored
    assert -32768 <= stored <= 32767  # fits readings.quality smallint
    assert severity(stored) is level


NAME_CASES = [
    (ua.StatusCode(SC.BadNodeIdUnknown), "BadNodeIdUnknown"),  # asyncua's object, as read
    (SC.BadNodeIdUnknown, "BadNodeIdUnknown"),  # the plain number
    (SC.Good, "Good"),
    (None, "Good"),  # a DataValue without StatusCode
    (SC.UncertainLastUsableValue, "UncertainLastUsableValue"),
    (SC.Good | 0x0400, "Good (0x00000400)"),  # info bits: the name of the top 16 bits, and hex
    (SC.BadSensorFailure | 0x0400, "BadSensorFailure (0x808C0400)"),
    (0x80FF0000, "Bad (0x80FF0000)"),  # unknown to asyncua: its severity, and hex
    (0x40FE0000, "Uncertain (0x40FE0000)"),
    (0x00FD0000, "Good (0x00FD0000)"),
]


@pytest.mark.parametrize(("code", "name"), NAME_CASES)
def test_status_name(code: ua.StatusCode | int | None, name: str) -> None:
    assert status_name(code) == name


VALUE_CASES = [
    (True, (1.0, None)),
    (False, (0.0, None)),
    (42, (42.0, None)),
    (-7, (-7.0, None)),
    (2.5, (2.5, None)),
    ("cola", (None, "cola")),
    (ua.LocalizedText("Running", "en"), (None, "Running")),
    (dt.datetime(2026, 3, 1, 8), (None, "2026-03-01T08:00:00+00:00")),
    (b"\x01\xff", (None, "01ff")),
    (None, (None, None)),
    (ua.Variant(3, ua.VariantType.UInt16), (3.0, None)),
]


@pytest.mark.parametrize(("raw", "expected"), VALUE_CASES)
def test_convert_value(raw: object, expected: tuple[float | None, str | None]) -> None:
    got = convert_value(raw)
    assert got == expected
    assert got[0] is None or type(got[0]) is float


@pytest.mark.parametrize("raw", [[1, 2, 3], float("nan"), float("inf"), {"a": 1}])
def test_convert_value_rejects(raw: object) -> None:
    with pytest.raises(DecodeError):
        convert_value(raw)


NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
SRC = dt.datetime(2026, 3, 1, 8)  # asyncua hands out naive UTC
SRV = dt.datetime(2026, 3, 1, 9)


@pytest.mark.parametrize(
    ("source", "server", "which", "expected"),
    [
        (SRC, SRV, "source", SRC),
        (SRC, SRV, "server", SRV),
        (None, SRV, "source", SRV),
        (SRC, None, "server", SRC),
        (None, None, "source", None),
        (dt.datetime(1601, 1, 1), None, "source", None),  # OPC UA's "no time"
        (SRC, SRV, "collector", None),  # the collector's clock, whatever the server says
    ],
)
def test_pick_timestamp(
    source: dt.datetime | None, server: dt.datetime | None, which: str, expected: dt.datetime | None
) -> None:
    dv = ua.DataValue(ua.Variant(1.0), SourceTimestamp=source, ServerTimestamp=server)
    got = pick_timestamp(dv, which, NOW)
    assert got == (expected.replace(tzinfo=dt.UTC) if expected else NOW)
    assert got.tzinfo is not None


def test_bad_status_drops_the_value() -> None:
    dv = ua.DataValue(
        ua.Variant(99.0), StatusCode=ua.StatusCode(SC.BadSensorFailure), SourceTimestamp=SRC
    )
    value, text, quality, ts = from_datavalue(dv, "source", NOW)
    assert (value, text) == (None, None)
    assert severity(quality) is Quality.BAD
    assert ts == SRC.replace(tzinfo=dt.UTC)


def test_uncertain_keeps_the_value() -> None:
    dv = ua.DataValue(ua.Variant(5.0), StatusCode=ua.StatusCode(SC.UncertainLastUsableValue))
    assert from_datavalue(dv, "source", NOW)[:3] == (5.0, None, 0x4090)
