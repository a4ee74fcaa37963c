"""KPI.md §3 null rules and flags, and §4 line KPIs, from sums given directly."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from config.plant import Line, Machine
from kpi import Counts, Sums, TimeSums, line_kpis, machine_kpis
from tests.kpi.builders import STATE_MAP


def sums(
    pbt_parts=(0.0, 0.0, 0.0, 0.0),
    good=None,
    reject=None,
    total=None,
    cycle=1.0,
    events=0,
    planned=None,
    units=1,
) -> Sums:
    run, down, idle, setup = pbt_parts
    pbt = run + down + idle + setup
    times = TimeSums(
        planned_time_s=pbt if planned is None else planned,
        planned_stop_s=0.0 if planned is None else planned - pbt,
        run_time_s=run,
        down_time_s=down,
        idle_time_s=idle,
        setup_time_s=setup,
        failure_events=events,
    )
    ideal = lambda n: None if n is None else n * cycle  # noqa: E731
    unit = lambda n: None if n is None else n * units  # noqa: E731
    counts = Counts(good, reject, total, ideal(good), ideal(reject), ideal(total))
    return Sums(
        times,
        replace(counts, good_units=unit(good), reject_units=unit(reject), total_units=unit(total)),
    )


N = None
# (name, sums, expected (A, P, Q, OEE, throughput, scrap, MTBF, MTTR), flags)
NULL_RULES = [
    ("nothing planned, nothing made", sums(), (N, N, N, N, N, N, N, N), ["counts_incomplete"]),
    (
        "PBT 0 but counts: performance undefined, flagged",
        sums(good=5, reject=0),
        (N, N, 1.0, N, N, 0.0, N, N),
        ["counts_without_run"],
    ),
    # PBT 3,600 all down in one failure: A 0, P null (APT 0), counts 0 -> OEE 0
    (
        "all down, no parts",
        sums((0, 3600, 0, 0), good=0, reject=0, events=1),
        (0.0, N, N, 0.0, 0.0, N, 0.0, 3600.0),
        [],
    ),
    # parts counted without run time: P null and flagged, OEE still good x ideal / PBT
    (
        "counts without run",
        sums((0, 3600, 0, 0), good=36, reject=0, events=1),
        (0.0, N, 1.0, 0.01, 36.0, 0.0, 0.0, 3600.0),
        ["counts_without_run"],
    ),
    # run 3,000 + setup 600, 2,000 good + 100 reject at 1 s; no failure -> MTBF/MTTR null
    (
        "normal, no failure",
        sums((3000, 0, 0, 600), good=2000, reject=100),
        (3000 / 3600, 0.7, 2000 / 2100, 2000 / 3600, 2100.0, 100 / 2100, N, N),
        [],
    ),
    # 3,200 parts in 3,000 s at 1 s: P = 1.0667 > 1.05
    (
        "performance above 1.05",
        sums((3000, 0, 0, 0), good=3200, reject=0),
        (1.0, 3200 / 3000, 1.0, 3200 / 3000, 3840.0, 0.0, N, N),
        ["performance_gt_1"],
    ),
    (
        "performance 1.04 is not flagged",
        sums((3000, 0, 0, 0), good=3120, reject=0),
        (1.0, 1.04, 1.0, 1.04, 3744.0, 0.0, N, N),
        [],
    ),
    (
        "machine without counters",
        sums((3000, 600, 0, 0), events=2),
        (3000 / 3600, N, N, N, N, N, 1500.0, 300.0),
        ["counts_incomplete"],
    ),
    (
        "all three counters disagree",
        sums((3600, 0, 0, 0), good=90, reject=5, total=100),
        (1.0, 0.1 / 3.6, 0.9, 0.025, 100.0, 0.05, N, N),
        ["count_mismatch"],
    ),
]


@pytest.mark.parametrize(
    ("given", "expected", "flags"), [c[1:] for c in NULL_RULES], ids=[c[0] for c in NULL_RULES]
)
def test_null_rules_and_flags(given: Sums, expected: tuple, flags: list[str]) -> None:
    k = machine_kpis(given)
    got = (
        k.availability,
        k.performance,
        k.quality,
        k.oee,
        k.throughput_per_hour,
        k.scrap_ratio,
        k.mtbf_s,
        k.mttr_s,
    )
    for name, g, e in zip(
        ("A", "P", "Q", "OEE", "tp", "scrap", "mtbf", "mttr"), got, expected, strict=True
    ):
        assert g == (None if e is None else pytest.approx(e, abs=1e-12)), name
    assert k.flags == flags


def test_field_names_are_kpi_md() -> None:
    d = machine_kpis(sums((3000, 0, 0, 0), good=1, reject=0)).as_dict()
    for name in (
        "planned_time_s",
        "planned_stop_s",
        "unknown_time_s",
        "planned_busy_time_s",
        "short_stop_s",
        "run_time_s",
        "down_time_s",
        "idle_time_s",
        "setup_time_s",
        "failure_events",
        "availability",
        "performance",
        "quality",
        "oee",
        "throughput_per_hour",
        "scrap_ratio",
        "mtbf_s",
        "mttr_s",
        "good_count",
        "reject_count",
        "total_count",
        "flags",
    ):
        assert name in d


def machine(mid: str, cycle: float) -> Machine:
    return Machine(id=mid, ideal_cycle_s=cycle, state_map=STATE_MAP)


def test_line_defaults_to_the_last_machine_and_sums_rejects_of_all() -> None:
    # Three machines, no roles configured: constraint and output = m3.
    # m3: PBT 3,600 (run 3,000, down 600 in 2 events), ideal 10 s, good 270, reject 3;
    # rejects upstream 5 (m1) and 2 (m2). good_line = 270, total_line = 270 + 5 + 2 + 3 = 280.
    # A = 3,000 / 3,600; P = 280 x 10 / 3,000; Q = 270 / 280; OEE = 270 x 10 / 3,600 = 0.75
    line = Line(id="l", machines=[machine("m1", 5), machine("m2", 8), machine("m3", 10)])
    k = line_kpis(
        line,
        {
            "m1": sums((3600, 0, 0, 0), good=300, reject=5, cycle=5),
            "m2": sums((3400, 200, 0, 0), good=290, reject=2, cycle=8, events=1),
            "m3": sums((3000, 600, 0, 0), good=270, reject=3, cycle=10, events=2),
        },
    )
    assert (k.good_count, k.reject_count, k.total_count, k.failure_events) == (270, 10, 280, 2)
    assert k.availability == pytest.approx(3000 / 3600)
    assert k.performance == pytest.approx(2800 / 3000)
    assert k.quality == pytest.approx(270 / 280)
    assert k.oee == pytest.approx(0.75)
    assert k.availability * k.performance * k.quality == pytest.approx(k.oee)


def test_line_uses_the_constraints_pbt_and_weighted_cycle() -> None:
    # Constraint m1 had 1,800 s of PLC planned stop (not a loss): calendar 7,200, PBT 5,400.
    # Its cycle changed mid-window: 100 parts at 10 s + 100 at 20 s -> ideal 3,000 s for 200
    # parts: effective 15 s. Output m2 made 190 good. OEE = 190 x 15 / 5,400
    line = Line(id="l", constraint_machine="m1", machines=[machine("m1", 20), machine("m2", 5)])
    m1 = Sums(
        TimeSums(planned_time_s=7200, planned_stop_s=1800, run_time_s=5400),
        Counts(
            good=200,
            reject=0,
            ideal_good_s=3000.0,
            ideal_reject_s=0.0,
            good_units=200,
            reject_units=0,
        ),
    )
    m2 = sums((5400, 0, 0, 0), good=190, reject=0, cycle=5, planned=7200)
    k = line_kpis(line, {"m1": m1, "m2": m2})
    assert k.planned_busy_time_s == 5400
    assert k.oee == pytest.approx(190 * 15 / 5400)
    assert k.performance == pytest.approx(190 * 15 / 5400)


def test_line_counts_with_an_unmeasured_reject_and_two_outputs() -> None:
    # m2 counts only its total: its reject is unknown (counts_incomplete), so the line's reject
    # and total are null; good_line = m2 + m3 = 300 + 270 still counts. Flags of every machine
    # add up: m1's counter reset, m2's counts_incomplete, each calendar_missing. The constraint
    # m3's effective cycle is 2,730 s / 273 parts = 10 s: OEE = 570 x 10 / 3,600.
    line = Line(
        id="l",
        output_machines=["m2", "m3"],
        machines=[machine("m1", 5), machine("m2", 8), machine("m3", 10)],
    )
    missing = TimeSums(planned_time_s=3600, run_time_s=3600, flags={"calendar_missing": 1})
    k = line_kpis(
        line,
        {
            "m1": Sums(
                missing,
                Counts(
                    good=300, reject=5, flags={"counter_resets": 2}, good_units=300, reject_units=5
                ),
            ),
            "m2": Sums(missing, Counts(good=300, good_units=300)),
            "m3": Sums(
                missing,
                Counts(
                    good=270,
                    reject=3,
                    ideal_good_s=2700.0,
                    ideal_reject_s=30.0,
                    good_units=270,
                    reject_units=3,
                ),
            ),
        },
    )
    assert (k.good_count, k.reject_count, k.total_count) == (570, None, None)
    assert (k.quality, k.performance, k.oee) == (None, None, 570 * 10 / 3600)
    assert k.flags == ["calendar_missing", "counter_resets:2", "counts_incomplete"]
    assert k.flag_counts == {"calendar_missing": 3, "counter_resets": 2, "counts_incomplete": 1}


def test_as_dict_is_dataclasses_asdict() -> None:
    k = machine_kpis(
        Sums(
            TimeSums(planned_time_s=3600, run_time_s=3000, flags={"calendar_missing": 1}),
            Counts(good=90, total=100, flags={"counter_wraps": 2}),
        )
    )
    d = k.as_dict()
    assert d == dataclasses.asdict(k)
    assert list(d) == [f.name for f in dataclasses.fields(k)]
    assert d["flags"] == ["calendar_missing", "counter_wraps:2"]
    d["flags"].append("x")  # type: ignore[attr-defined]
    d["flag_counts"]["x"] = 1  # type: ignore[index]
    assert "x" not in k.flags and "x" not in k.flag_counts  # copies, as asdict gives
