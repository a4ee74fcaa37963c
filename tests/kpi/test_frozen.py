"""The hot paths' constructors (kpi.frozen) build what the dataclasses' own do."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from kpi import Counts, CycleHistory, Kpis, StateSeconds, Sums, TimeSums
from kpi.counts import make_counts
from kpi.formulas import make_kpis
from kpi.frozen import fast_constructor
from kpi.sums import make_state_seconds, make_sums, make_time_sums

STATE = (1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.5, 2)
TIMES = (3600.0, 600.0, 60.0, 30.0, 2400.0, 90.0, 300.0, 120.0, 60.0, 2, 0.0, {"x": 1})
COUNTS = (98, 2, 100, 98.0, 2.0, 100.0, {"counter_resets": 1})
KPIS = (
    *(3600.0, 600.0, 60.0, 2910.0, 30.0, 2430.0, 90.0, 300.0, 120.0, 60.0),
    *(0.83, 0.04, 0.98, 0.03, 123.7, 0.02, 1245.0, 150.0, 98, 2, 100, 2),
    ["counter_resets:1"],
    {"counter_resets": 1},
)


@pytest.mark.parametrize(
    ("cls", "make", "values"),
    [
        (StateSeconds, make_state_seconds, STATE),
        (TimeSums, make_time_sums, TIMES),
        (Counts, make_counts, COUNTS),
        (Sums, make_sums, (TimeSums(*TIMES), Counts(*COUNTS))),
        (Kpis, make_kpis, KPIS),
    ],
)
def test_fast_constructors_build_what_the_dataclass_builds(cls, make, values) -> None:
    made, real = make(*values), cls(*values)
    assert type(made) is cls
    assert made == real and repr(made) == repr(real)
    assert dataclasses.astuple(made) == dataclasses.astuple(real)
    assert pickle.loads(pickle.dumps(made)) == real
    names = [f.name for f in dataclasses.fields(cls)]
    assert make(**dict(zip(names, values, strict=True))) == real  # by name too
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, names[0], values[0])  # still frozen
    with pytest.raises(TypeError):
        make(*values[:-1])  # no defaults: every field must be given


def test_replace_and_addition_still_work_on_fast_built_values() -> None:
    a = make_state_seconds(*STATE)
    assert dataclasses.replace(a, running_s=0.0) == StateSeconds(0.0, *STATE[1:])
    assert a + a == StateSeconds(*(2 * x for x in STATE))


def test_classes_the_fast_path_cannot_build_are_refused() -> None:
    with pytest.raises(TypeError, match="__post_init__"):
        fast_constructor(CycleHistory)  # its __post_init__ sorts the entries
    with pytest.raises(TypeError, match="dataclass"):
        fast_constructor(int)  # type: ignore[arg-type]
