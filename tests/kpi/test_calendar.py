"""Shift calendar -> UTC spans: midnight crossing, DST nights, shift lookup."""

from __future__ import annotations

import datetime as dt

import pytest

from config.plant import Break, Calendar, Shift, Weekday
from kpi import calendar_time, shift_at, shift_instances
from kpi.spans import total_seconds
from tests.kpi.builders import at, calendar

BERLIN = "Europe/Berlin"
EVERY_DAY = list(Weekday)


def night(breaks=(("02:00", "02:30"),)) -> Calendar:
    return calendar("22:00", "06:00", breaks, tz=BERLIN, days=EVERY_DAY, name="night")


def test_shift_across_midnight_with_break_after_midnight() -> None:
    # Monday 2026-03-02, CET (+01:00): 22:00 local = 21:00 UTC, ends Tue 05:00 UTC;
    # the 02:00 break lies on Tuesday: 01:00-01:30 UTC.
    cal = calendar("22:00", "06:00", [("02:00", "02:30")], tz=BERLIN, name="night")
    ct = calendar_time(cal, at("2026-03-02", "12:00"), at("2026-03-03", "12:00"))
    assert ct.shifts == ((at("2026-03-02", "21:00"), at("2026-03-03", "05:00")),)
    assert ct.breaks == ((at("2026-03-03", "01:00"), at("2026-03-03", "01:30")),)
    assert total_seconds(ct.planned) == 8 * 3600 - 1800


def test_days_are_the_start_day_of_a_night_shift() -> None:
    # Mon-Fri nights: Friday's night ends Saturday morning; no shift starts on Sat or Sun.
    cal = calendar("22:00", "06:00", tz="UTC", name="night")
    found = shift_instances(cal, at("2026-03-06", "00:00"), at("2026-03-09", "12:00"))
    assert [(i.local_date.isoformat(), i.start, i.end) for i in found] == [
        ("2026-03-05", at("2026-03-05", "22:00"), at("2026-03-06", "06:00")),
        ("2026-03-06", at("2026-03-06", "22:00"), at("2026-03-07", "06:00")),
    ]


@pytest.mark.parametrize(
    ("day", "hours", "start_utc", "end_utc", "break_utc"),
    [
        # Spring forward (2026-03-29 02:00 CET -> 03:00 CEST): 22:00+01 -> 06:00+02 = 7 h.
        # The 02:00-02:30 break does not exist on the clock; fold=0 reads it with the old
        # offset, i.e. 03:00-03:30 CEST = 01:00-01:30 UTC.
        (
            "2026-03-28",
            7,
            "2026-03-28T21:00",
            "2026-03-29T04:00",
            ("2026-03-29T01:00", "2026-03-29T01:30"),
        ),
        # Fall back (2026-10-25 03:00 CEST -> 02:00 CET): 22:00+02 -> 06:00+01 = 9 h.
        # 02:00-02:30 happens twice; the first occurrence (CEST) is taken: 00:00-00:30 UTC.
        (
            "2026-10-24",
            9,
            "2026-10-24T20:00",
            "2026-10-25T05:00",
            ("2026-10-25T00:00", "2026-10-25T00:30"),
        ),
    ],
)
def test_night_shift_on_dst_nights(day, hours, start_utc, end_utc, break_utc) -> None:
    utc = lambda s: dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC)  # noqa: E731
    (inst,) = [
        i
        for i in shift_instances(night(), utc(start_utc), utc(end_utc))
        if i.local_date.isoformat() == day
    ]
    assert (inst.start, inst.end) == (utc(start_utc), utc(end_utc))
    assert (inst.end - inst.start).total_seconds() == hours * 3600
    assert inst.breaks == ((utc(break_utc[0]), utc(break_utc[1])),)
    ct = calendar_time(
        night(), inst.start - dt.timedelta(hours=1), inst.end + dt.timedelta(hours=1)
    )
    assert total_seconds(ct.shifts) == hours * 3600
    assert total_seconds(ct.planned) == hours * 3600 - 1800


def test_consecutive_shifts_stay_adjacent_across_dst() -> None:
    # Shifts changing at 02:30 (nonexistent on 2026-03-29, doubled on 2026-10-25): both
    # shifts read it the same way, so there is neither a gap nor an overlap.
    cal = Calendar(
        timezone=BERLIN,
        shifts=[
            Shift(name="a", start="18:30", end="02:30", days=EVERY_DAY),
            Shift(name="b", start="02:30", end="18:30", days=EVERY_DAY),
        ],
    )
    for day in ("2026-03-29", "2026-10-25"):
        start, end = at(day, "00:00", BERLIN), at(day, "12:00", BERLIN)
        ct = calendar_time(cal, start, end)
        assert ct.shifts == ((start, end),)


def test_overlapping_shifts_count_once_and_one_break_does_not_stop_the_other() -> None:
    cal = Calendar(
        timezone="UTC",
        shifts=[
            Shift(name="a", start="06:00", end="14:00", breaks=[Break(start="13:00", end="13:30")]),
            Shift(name="b", start="12:00", end="20:00", breaks=[Break(start="16:00", end="16:30")]),
        ],
    )
    ct = calendar_time(cal, at("2026-03-02", "00:00"), at("2026-03-03", "00:00"))
    assert total_seconds(ct.shifts) == 14 * 3600  # 06:00-20:00, not 16 h
    assert ct.breaks == ((at("2026-03-02", "16:00"), at("2026-03-02", "16:30")),)
    assert shift_at(cal, at("2026-03-02", "12:30")).name == "b"  # the latest started


def test_window_clips_the_calendar() -> None:
    cal = calendar("06:00", "14:00", [("10:00", "10:30")])
    ct = calendar_time(cal, at("2026-03-02", "10:15"), at("2026-03-02", "11:00"))
    assert ct.shifts == ((at("2026-03-02", "10:15"), at("2026-03-02", "11:00")),)
    assert ct.breaks == ((at("2026-03-02", "10:15"), at("2026-03-02", "10:30")),)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (("2026-03-03", "03:00"), ("night", "2026-03-02")),  # after midnight: Monday's night
        (("2026-03-02", "21:00"), ("night", "2026-03-02")),  # start is inside (22:00 CET)
        (("2026-03-03", "05:00"), None),  # end is outside (06:00 CET)
        (("2026-03-03", "12:00"), None),
    ],
)
def test_shift_at(instant, expected) -> None:
    cal = calendar("22:00", "06:00", tz=BERLIN, name="night")
    found = shift_at(cal, at(*instant))
    if expected is None:
        assert found is None
    else:
        assert (found.name, found.local_date.isoformat()) == expected
