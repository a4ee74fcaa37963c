"""KPI.md §5 worked examples, built from raw state and counter samples."""

from __future__ import annotations

from dataclasses import replace

import pytest

from config.plant import Line, Machine
from kpi import CycleHistory, line_kpis, machine_kpis
from tests.kpi.builders import (
    DOWN,
    IDLE,
    PLANNED,
    RUN,
    STATE_MAP,
    at,
    calendar,
    counter,
    heartbeat,
    machine_sums,
    spread,
)

DAY = "2026-03-02"  # a Monday


def t(clock: str):
    return at(DAY, clock)


def shift_samples(changes: list[tuple[str, int]]) -> list:
    """State changes of one day, re-recorded every 30 s from 05:00 to 15:00."""
    return heartbeat([(t(c), v) for c, v in changes], until=t("15:00"))


# Counters sampled every 60 s: baseline 05:59:30, then 06:00:30 ... 13:59:30 (480 samples,
# all inside the shift), then 30 more after 14:00 that the window must not count.
SLOTS, AFTER = 480, 30


def totals(n: int) -> list[int]:
    return spread(n, SLOTS) + [40] * AFTER


def rejects(n: int) -> list[int]:
    return spread(n, SLOTS) + [1] * AFTER


# The examples' inputs, shared with tests/engine/test_examples.py (the same examples through the
# database): breaks and state changes of the 06:00-14:00 shift, counters by name.

# A: breaks 15 + 30 + 15 min; one 47-min failure at 09:00.
A_BREAKS = [("08:00", "08:15"), ("10:00", "10:30"), ("12:00", "12:15")]
A_STATES = [
    ("05:00", IDLE),
    ("06:00", RUN),
    ("08:00", PLANNED),
    ("08:15", RUN),
    ("09:00", DOWN),
    ("09:47", RUN),
    ("10:00", IDLE),  # idle during a calendar break: still a planned stop
    ("10:30", RUN),
    ("12:00", PLANNED),
    ("12:15", RUN),
    ("14:00", IDLE),
]


def a_counters() -> dict[str, list]:
    return {
        "total": counter(t("05:59:30"), totals(19_271), start_value=1000),
        "reject": counter(t("05:59:30"), rejects(423), start_value=50),
    }


# B: one 30-min break, failures of 20, 15 and 10 min; good and total counters.
B_BREAKS = [("10:00", "10:30")]
B_STATES = [
    ("05:00", IDLE),
    ("06:00", RUN),
    ("07:00", DOWN),
    ("07:20", RUN),
    ("09:00", DOWN),
    ("09:15", RUN),
    ("10:00", PLANNED),
    ("10:30", RUN),
    ("12:00", DOWN),
    ("12:10", RUN),
    ("14:00", IDLE),
]


def b_counters() -> dict[str, list]:
    good = [a - b for a, b in zip(totals(19_271), rejects(423), strict=True)]
    return {"total": counter(t("05:59:30"), totals(19_271)), "good": counter(t("05:59:30"), good)}


# D: no breaks. M1 (constraint, ideal 60 s): one 60-min failure, total 400, rejects 10, counted
# by good + reject counters. M2 (output, ideal 30 s): one 30-min failure, total 390, rejects 5.
D_M1_STATES = [("05:00", IDLE), ("06:00", RUN), ("08:00", DOWN), ("09:00", RUN), ("14:00", IDLE)]
D_M2_STATES = [("05:00", IDLE), ("06:00", RUN), ("10:00", DOWN), ("10:30", RUN), ("14:00", IDLE)]


def d_counters() -> dict[str, dict[str, list]]:
    m1_total, m1_reject = [1] * 400 + [0] * 80, [1] * 10 + [0] * 470
    m1_good = [a - b for a, b in zip(m1_total, m1_reject, strict=True)]
    return {
        "m1": {
            "good": counter(t("05:59:30"), m1_good),
            "reject": counter(t("05:59:30"), m1_reject),
        },
        "m2": {
            "total": counter(t("05:59:30"), [1] * 390 + [0] * 90),
            "reject": counter(t("05:59:30"), [1] * 5 + [0] * 475),
        },
    }


# E: a bottling line over one hour (06:00-07:00, no breaks). Filler (constraint, 0.5 s per
# bottle): one 10-min failure, total 5,400 bottles, rejects 50. Capper: rejects 30 bottles.
# Packer (output, units_per_count 12): good 430 cases, rejects 2 cases. Counters every 60 s.
E_FILLER_STATES = [
    ("05:00", IDLE),
    ("06:00", RUN),
    ("06:20", DOWN),
    ("06:30", RUN),
    ("07:00", IDLE),
]
E_RUNNING = [("05:00", IDLE), ("06:00", RUN), ("07:00", IDLE)]
E_MACHINES = ("filler", "capper", "packer")


def e_counters() -> dict[str, dict[str, list]]:
    def per_minute(n: int) -> list:
        return counter(t("05:59:30"), spread(n, 60) + [0] * 10)

    return {
        "filler": {"total": per_minute(5_400), "reject": per_minute(50)},
        "capper": {"total": per_minute(5_350), "reject": per_minute(30)},
        "packer": {"good": per_minute(430), "reject": per_minute(2)},
    }


def e_line() -> Line:
    return Line(
        id="l1",
        constraint_machine="filler",
        output_machines=["packer"],
        machines=[
            Machine(id="filler", ideal_cycle_s=0.5, state_map=STATE_MAP),
            Machine(id="capper", ideal_cycle_s=0.45, state_map=STATE_MAP),
            Machine(id="packer", ideal_cycle_s=6.0, units_per_count=12, state_map=STATE_MAP),
        ],
    )


def assert_example_e(k) -> None:
    """KPI.md example E's line figures (line units: bottles)."""
    assert (k.good_count, k.reject_count, k.total_count) == (5_160, 104, 5_264)
    assert (k.planned_busy_time_s, k.run_time_s, k.failure_events) == (3_600, 3_000, 1)
    assert k.availability == pytest.approx(0.833333, abs=1e-6)
    assert k.performance == pytest.approx(0.877333, abs=1e-6)
    assert k.quality == pytest.approx(0.980243, abs=1e-6)
    assert k.oee == pytest.approx(0.716667, abs=1e-6)  # 5,160 x 0.5 / 3,600
    assert k.throughput_per_hour == pytest.approx(5_264, abs=1e-6)


def test_example_e_line_units() -> None:
    cal = calendar("06:00", "07:00")
    counters = e_counters()
    line = e_line()
    sums = {
        m.id: machine_sums(
            states=shift_samples(E_FILLER_STATES if m.id == "filler" else E_RUNNING),
            start=t("06:00"),
            end=t("07:00"),
            cal=cal,
            cycles=CycleHistory.constant(m.ideal_cycle_s, m.units_per_count),
            counters=counters[m.id],
        )
        for m in line.machines
    }
    assert_example_e(line_kpis(line, sums))
    # machine KPIs stay in the machine's own units: the packer counts 432 cases
    packer = machine_kpis(sums["packer"])
    assert (packer.good_count, packer.reject_count, packer.total_count) == (430, 2, 432)
    assert packer.performance == pytest.approx(432 * 6 / 3_600, abs=1e-9)
    # without line units (every machine 1 unit per count), the figures KPI.md warns of
    plain = {
        m: replace(
            s,
            counts=replace(
                s.counts,
                good_units=s.counts.good,
                reject_units=s.counts.reject,
                total_units=s.counts.total,
            ),
        )
        for m, s in sums.items()
    }
    k = line_kpis(line, plain)
    assert k.performance == pytest.approx(0.085333, abs=1e-6)
    assert k.oee == pytest.approx(0.059722, abs=1e-6)


def test_example_a_oee_com() -> None:
    # Shift 06:00-14:00 (480 min) with breaks 15 + 30 + 15 min; one 47-min failure at 09:00.
    cal = calendar("06:00", "14:00", A_BREAKS)
    states = shift_samples(A_STATES)
    sums = machine_sums(
        states=states, start=t("06:00"), end=t("14:00"), cal=cal, counters=a_counters()
    )
    k = machine_kpis(sums)
    # PBT = 28,800 - 3,600 = 25,200; APT = 25,200 - 47 x 60 = 22,380; good = 19,271 - 423
    assert k.planned_time_s == 28_800
    assert k.planned_stop_s == 3_600
    assert k.planned_busy_time_s == 25_200
    assert k.run_time_s == 22_380
    assert k.down_time_s == 2_820
    assert (k.total_count, k.reject_count, k.good_count) == (19_271, 423, 18_848)
    assert k.failure_events == 1
    assert k.availability == pytest.approx(0.888095, abs=1e-6)
    assert k.performance == pytest.approx(0.861081, abs=1e-6)
    assert k.quality == pytest.approx(0.978050, abs=1e-6)
    assert k.oee == pytest.approx(0.747937, abs=1e-6)
    assert k.oee == pytest.approx(18_848 / 25_200, abs=1e-12)
    assert k.availability * k.performance * k.quality == pytest.approx(k.oee, abs=1e-12)
    assert k.flags == []


def test_example_b() -> None:
    # 8-hour shift, one 30-min break, failures of 20, 15 and 10 min; good and total counters.
    cal = calendar("06:00", "14:00", B_BREAKS)
    states = shift_samples(B_STATES)
    k = machine_kpis(
        machine_sums(
            states=states, start=t("06:00"), end=t("14:00"), cal=cal, counters=b_counters()
        )
    )
    # PBT = 28,800 - 1,800 = 27,000; down = 1,200 + 900 + 600 = 2,700; APT = 24,300
    assert (k.planned_busy_time_s, k.run_time_s, k.down_time_s) == (27_000, 24_300, 2_700)
    assert k.failure_events == 3
    assert k.availability == pytest.approx(0.900000, abs=1e-6)
    assert k.performance == pytest.approx(0.793045, abs=1e-6)
    assert k.quality == pytest.approx(0.978050, abs=1e-6)
    assert k.oee == pytest.approx(0.698074, abs=1e-6)
    assert k.throughput_per_hour == pytest.approx(2_569.466667, abs=1e-6)  # 19,271 / 7.5
    assert k.scrap_ratio == pytest.approx(0.021950, abs=1e-6)
    assert k.mtbf_s == pytest.approx(8_100, abs=1e-9)  # 24,300 / 3
    assert k.mttr_s == pytest.approx(900, abs=1e-9)  # 2,700 / 3
    assert k.reject_count == 423


def test_example_d_serial_line() -> None:
    cal = calendar("06:00", "14:00")  # PBT 28,800 s, no breaks
    # M1 (constraint): ideal 60 s, one 60-min failure -> APT 25,200; total 400, rejects 10,
    # counted by good + reject counters.
    counters = d_counters()
    m1 = machine_sums(
        states=shift_samples(D_M1_STATES),
        start=t("06:00"),
        end=t("14:00"),
        cal=cal,
        cycles=60.0,
        counters=counters["m1"],
    )
    # M2 (output): ideal 30 s, one 30-min failure -> APT 27,000; total 390, rejects 5.
    m2 = machine_sums(
        states=shift_samples(D_M2_STATES),
        start=t("06:00"),
        end=t("14:00"),
        cal=cal,
        cycles=30.0,
        counters=counters["m2"],
    )
    k1, k2 = machine_kpis(m1), machine_kpis(m2)
    assert k1.oee == pytest.approx(0.812500, abs=1e-6)  # 390 x 60 / 28,800
    assert k2.oee == pytest.approx(0.401042, abs=1e-6)  # 385 x 30 / 28,800
    assert (k1.oee + k2.oee) / 2 == pytest.approx(0.606771, abs=1e-6)  # the misleading mean

    line = Line(
        id="l1",
        constraint_machine="m1",
        output_machines=["m2"],
        machines=[
            Machine(id="m1", ideal_cycle_s=60, state_map=STATE_MAP),
            Machine(id="m2", ideal_cycle_s=30, state_map=STATE_MAP),
        ],
    )
    k = line_kpis(line, {"m1": m1, "m2": m2})
    # total_line = 385 + 10 + 5 = 400; A = 25,200 / 28,800; P = 400 x 60 / 25,200;
    # Q = 385 / 400; OEE = 385 x 60 / 28,800
    assert (k.good_count, k.reject_count, k.total_count) == (385, 15, 400)
    assert k.availability == pytest.approx(0.875, abs=1e-6)
    assert k.performance == pytest.approx(0.952381, abs=1e-6)
    assert k.quality == pytest.approx(0.9625, abs=1e-6)
    assert k.oee == pytest.approx(0.802083, abs=1e-6)
    assert k.planned_busy_time_s == 28_800
