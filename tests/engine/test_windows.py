"""How a window's whole minutes are cut into rollup pieces (storage.engine.windows.Pieces):
every minute counted once, and its class seconds read once, in its own calendar region."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from kpi import bucket_spans, calendar_time
from kpi.spans import intersect, subtract, total_seconds
from storage.engine.windows import (
    HOUR,
    MINUTE,
    PieceColumns,
    Pieces,
    Region,
    RegionCutter,
    RegionSpans,
)
from tests.kpi.builders import at, calendar

D = "2026-03-02"  # a Monday
P, B, OUT = Region.PRODUCTIVE, Region.BREAK, Region.OUTSIDE


def t(clock: str, day: str = D) -> dt.datetime:
    return at(day, clock)


def rows(cols: PieceColumns) -> list[tuple[str, str, int | None, int]]:
    return [
        (lo.strftime("%H:%M"), hi.strftime("%H:%M"), region, bucket)
        for lo, hi, region, bucket in zip(cols.lo, cols.hi, cols.region, cols.bucket, strict=True)
    ]


def test_a_bucket_cut_by_a_break_and_the_shift_start() -> None:
    cal = calendar("06:00", "14:00", [("07:00", "07:15")])
    lo, hi = t("05:30"), t("08:45")
    cut = RegionCutter(calendar_time(cal, lo, hi))(lo, hi)
    pieces = Pieces()
    pieces.add(lo, hi, cut, 3)
    # 06:00-07:00 whole and productive: counts and class seconds from its hour row; 07:00-08:00
    # is cut by the break: counted by its hour row, class seconds from its minutes per region.
    assert rows(pieces.hours) == [("06:00", "07:00", P, 3), ("07:00", "08:00", None, 3)]
    # minutes outside whole hours: counts and class seconds
    assert rows(pieces.minutes) == [("08:00", "08:45", P, 3), ("05:30", "06:00", OUT, 3)]
    # minutes of the cut hour: class seconds only
    assert rows(pieces.split) == [("07:15", "08:00", P, 3), ("07:00", "07:15", B, 3)]


def test_a_bucket_of_whole_hours_in_one_region_is_one_hour_piece() -> None:
    cal = calendar("06:00", "14:00")
    lo, hi = t("08:00"), t("11:00")
    pieces = Pieces()
    pieces.add(lo, hi, RegionCutter(calendar_time(cal, lo, hi))(lo, hi), 0)
    assert rows(pieces.hours) == [("08:00", "11:00", P, 0)]
    assert len(pieces.minutes) == 0 and len(pieces.split) == 0


def test_without_a_calendar_everything_is_productive() -> None:
    lo, hi = t("06:20"), t("09:05")
    pieces = Pieces()
    pieces.add(lo, hi, RegionCutter(None)(lo, hi), 1)
    assert rows(pieces.hours) == [("07:00", "09:00", P, 1)]
    assert rows(pieces.minutes) == [("06:20", "07:00", P, 1), ("09:00", "09:05", P, 1)]
    assert len(pieces.split) == 0


def _minutes(lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    out = []
    while lo < hi:
        out.append(lo)
        lo += MINUTE
    return out


@pytest.mark.parametrize("bucket", ["15m", "1h", "2h", "day", "shift"])
@pytest.mark.parametrize("with_calendar", [True, False])
def test_every_minute_counted_once_and_its_seconds_read_once_in_its_region(
    bucket: str, with_calendar: bool
) -> None:
    # a night shift with a break after midnight, a day shift with two breaks, gaps between
    cal = calendar("22:00", "05:30", [("02:00", "02:30")], days=None)
    cal.shifts.append(
        calendar("06:00", "14:00", [("09:00", "09:15"), ("12:00", "12:40")]).shifts[0]
    )
    s, e = t("20:10", "2026-03-01"), t("15:20", "2026-03-03")
    ct = calendar_time(cal, s, e) if with_calendar else None
    cutter = RegionCutter(ct)
    pieces = Pieces()
    expected_region: dict[dt.datetime, Region] = {}
    buckets = bucket_spans(s, e, bucket, cal if with_calendar else None)
    for i, b in enumerate(buckets):
        cut = cutter(b.start, b.end)
        pieces.add(b.start, b.end, cut, i)
        for region, spans in cut.by_region():
            for lo, hi in spans:
                for m in _minutes(lo, hi):
                    expected_region[m] = region
    counted: Counter[dt.datetime] = Counter()
    seconds: dict[dt.datetime, list[Region]] = {}
    bucket_of: dict[dt.datetime, int] = {}
    for cols, step, counts in ((pieces.hours, HOUR, True), (pieces.minutes, MINUTE, True)):
        for lo, hi, region, i in zip(cols.lo, cols.hi, cols.region, cols.bucket, strict=True):
            assert lo == lo.replace(second=0, microsecond=0) and (hi - lo) % step == dt.timedelta()
            for m in _minutes(lo, hi):
                counted[m] += counts
                bucket_of[m] = i
                if region is not None:
                    seconds.setdefault(m, []).append(Region(region))
    for lo, hi, region, i in zip(
        pieces.split.lo, pieces.split.hi, pieces.split.region, pieces.split.bucket, strict=True
    ):
        for m in _minutes(lo, hi):
            assert bucket_of[m] == i  # its hour row is the same bucket's
            seconds.setdefault(m, []).append(Region(region))
    everything = _minutes(s, e)
    assert set(counted) == set(everything) and set(counted.values()) == {1}
    assert seconds == {m: [expected_region[m]] for m in everything}
    for m in everything:
        b = buckets[bucket_of[m]]
        assert b.start <= m < b.end


@pytest.mark.parametrize("bucket", ["15m", "1h", "2h", "day", "shift"])
def test_region_cuts_equal_the_set_operations(bucket: str) -> None:
    # RegionCutter answers a span with no calendar edge inside without clipping: its answer
    # must still be what the set operations give, to the type (no spans: an int 0 seconds).
    cal = calendar("22:00", "05:30", [("02:00", "02:30")], days=None)
    cal.shifts.append(
        calendar("06:00", "14:00", [("09:00", "09:15"), ("12:00", "12:40")]).shifts[0]
    )
    s, e = t("20:10", "2026-03-01"), t("15:20", "2026-03-03")
    ct = calendar_time(cal, s, e)
    cutter = RegionCutter(ct)
    spans = [(b.start, b.end) for b in bucket_spans(s, e, bucket, cal)]
    spans += [(t("07:00"), t("08:00")), (t("02:10"), t("02:20")), (t("14:00"), t("21:00"))]
    for lo, hi in spans * 2:  # twice: the second answer of a gap comes from its cache
        window = [(lo, hi)]
        shifts = intersect(ct.shifts, window)
        expected = RegionSpans(
            productive=intersect(ct.planned, window),
            breaks=intersect(ct.breaks, window),
            outside=subtract(window, shifts),
            planned_s=total_seconds(shifts),
            break_s=total_seconds(intersect(ct.breaks, window)),
        )
        got = cutter(lo, hi)
        assert repr(got) == repr(expected), (lo, hi)
