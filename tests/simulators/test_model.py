"""The line model alone, in simulated time: deterministic, every state class, counters, calendar."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from config.plant import StateClass
from simulators import SimulationError, simulate, with_simulation
from simulators.model import CounterReset, PartDone, StateChange
from tests.simulators.helpers import demo_config

EPOCH = dt.datetime(2026, 1, 5, 5, 0, tzinfo=dt.UTC)  # Monday 06:00 in Berlin: early shift starts


def _sequence(events: list) -> list[tuple]:
    return [
        (type(e).__name__, *(getattr(e, f) for f in e.__slots__))
        for e in events
        if isinstance(e, StateChange | PartDone | CounterReset)
    ]


def test_same_seed_same_sequence_different_seed_differs() -> None:
    cfg = demo_config()
    first = simulate(cfg, until_s=4 * 3600, seed=7, epoch=EPOCH)
    second = simulate(cfg, until_s=4 * 3600, seed=7, epoch=EPOCH)
    other = simulate(cfg, until_s=4 * 3600, seed=8, epoch=EPOCH)
    assert _sequence(first) == _sequence(second)
    assert len(_sequence(first)) > 1000
    assert _sequence(first) != _sequence(other)


def test_the_sequence_does_not_depend_on_how_time_is_sliced() -> None:
    """The live runner advances in wall-clock steps of any size; the truth must not notice."""
    from simulators.model import Clock, LineModel

    cfg = demo_config()
    whole = LineModel(cfg, Clock(EPOCH, 1.0), cfg.simulation).advance(3600)
    model = LineModel(cfg, Clock(EPOCH, 1.0), cfg.simulation)
    sliced = []
    t = 0.0
    while t < 3600:
        t = min(3600, t + 0.37)
        sliced += model.advance(t)
    assert _sequence(whole) == _sequence(sliced)


def test_every_state_class_and_reason_appears() -> None:
    cfg = demo_config(
        labeler={"changeover_every": {"mean_s": 600}, "changeover": {"mean_s": 60}},
        packer={
            "maintenance_every": {"mean_s": 900, "distribution": "fixed"},
            "maintenance": {"mean_s": 60, "distribution": "fixed"},
        },
    )
    events = simulate(cfg, until_s=4 * 3600, seed=3, epoch=EPOCH)
    seen = Counter((e.state_class, e.reason) for e in events if isinstance(e, StateChange))
    classes = {cls for cls, _ in seen}
    assert classes == set(StateClass)
    assert (StateClass.IDLE, 201) in seen  # starved
    assert (StateClass.IDLE, 202) in seen  # blocked
    assert (StateClass.SETUP, 301) in seen
    assert (StateClass.PLANNED_STOP, 401) in seen
    assert {r for c, r in seen if c is StateClass.DOWN} <= {101, 102, 103}
    state_values = {(e.state_class, e.state) for e in events if isinstance(e, StateChange)}
    inverse = {
        StateClass.PLANNED_STOP: 0,
        StateClass.RUNNING: 1,
        StateClass.IDLE: 2,
        StateClass.DOWN: 3,
        StateClass.SETUP: 4,
    }
    assert all(inverse[cls] == value for cls, value in state_values)


def test_counters_count_every_part_and_reset_on_plc_restart() -> None:
    cfg = demo_config(capper={"counter_start": 100, "counter_reset_at_s": [600.0]})
    events = [e for e in simulate(cfg, until_s=1200, seed=5, epoch=EPOCH) if e.machine == "capper"]
    expected = {"good": 100, "reject": 100, "total": 100}
    for e in events:
        if isinstance(e, CounterReset):
            expected = dict.fromkeys(expected, 0)
        elif isinstance(e, PartDone):
            assert e.good + e.reject == 1
            expected["good"] += e.good
            expected["reject"] += e.reject
            expected["total"] += 1
            assert (e.good_counter, e.reject_counter, e.total_counter) == (
                expected["good"],
                expected["reject"],
                expected["total"],
            )
    assert sum(isinstance(e, CounterReset) for e in events) == 1
    assert expected["total"] > 100  # the reset happened and counting went on


def test_no_part_is_made_during_a_break() -> None:
    # 08:00 UTC is 09:00 in Berlin: breakfast break until 09:15, i.e. 900 s.
    cfg = with_simulation(demo_config(), follow_calendar=True)
    events = simulate(cfg, until_s=1800, seed=1, epoch=dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC))
    first = [e for e in events if isinstance(e, StateChange) and e.t == 0]
    assert {e.state_class for e in first} == {StateClass.PLANNED_STOP}
    parts = [e for e in events if isinstance(e, PartDone)]
    assert parts and min(p.t for p in parts) > 900


def test_a_buffer_smaller_than_a_cycle_s_needs_is_refused() -> None:
    cfg = demo_config(labeler={"buffer_after": 4})  # the packer takes 12 bottles per case
    with pytest.raises(SimulationError, match="buffer_after"):
        simulate(cfg, until_s=10)
