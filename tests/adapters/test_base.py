"""`Reading`, the one type every adapter hands the collector."""

from __future__ import annotations

import datetime as dt
from itertools import repeat

import pytest

from adapters.base import Quality, Reading, good_readings

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


def test_good_readings_are_the_readings_built_one_by_one() -> None:
    t1 = T0 + dt.timedelta(seconds=1)
    got = good_readings("plc", ["a", "b"], [T0, t1], [1.5, None], [None, "RUN"])
    assert got == [Reading("plc", "a", T0, 1.5), Reading("plc", "b", t1, None, Quality.GOOD, "RUN")]
    assert all(type(r) is Reading for r in got) and got[1].text == "RUN"
    shared = good_readings("plc", ("a", "b"), repeat(T0), (1.0, 2.0))  # one stamp, no text
    assert shared == [Reading("plc", "a", T0, 1.0), Reading("plc", "b", T0, 2.0)]
    with pytest.raises(ValueError, match="2 addresses but 1 values"):
        good_readings("plc", ["a", "b"], repeat(T0), [1.0])
