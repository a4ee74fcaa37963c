"""`Reading`, the one type every adapter hands the collector."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.base import Quality, Reading

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


def test_reading_is_built_positionally_with_good_quality_and_no_text_by_default() -> None:
    r = Reading("plc", "1/holding/0/uint16/ABCD", T0, 1.5)
    assert (r.source, r.address, r.ts, r.value, r.quality, r.text) == (
        "plc",
        "1/holding/0/uint16/ABCD",
        T0,
        1.5,
        Quality.GOOD,
        None,
    )
    full = Reading("plc", "a", T0, None, Quality.BAD, "text")
    assert (full.value, full.quality, full.text) == (None, 2, "text")
    assert Reading(source="s", address="a", ts=T0, value=2.0, text="x").text == "x"


def test_reading_is_immutable_and_compared_by_value() -> None:
    r = Reading("plc", "a", T0, 1.0)
    with pytest.raises(AttributeError):
        r.value = 2.0  # type: ignore[misc]
    same = Reading("plc", "a", T0, 1.0, Quality.GOOD, None)
    assert r == same and hash(r) == hash(same) and len({r, same}) == 1
    assert r != Reading("plc", "a", T0, 1.0, Quality.UNCERTAIN)
    assert repr(r).startswith("Reading(source='plc', address='a', ts=")
