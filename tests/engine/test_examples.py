"""KPI.md §5 examples A, B, D and E: PLC readings in the database, KPIs through the engine."""

from __future__ import annotations

import psycopg
import pytest

from storage.engine import KpiEngine
from tests.engine.plant import M, assert_same, plant_config, refresh, setup_db, shift, write
from tests.kpi.test_examples import (
    A_BREAKS,
    A_STATES,
    B_BREAKS,
    B_STATES,
    D_M1_STATES,
    D_M2_STATES,
    E_FILLER_STATES,
    E_RUNNING,
    a_counters,
    assert_example_e,
    b_counters,
    d_counters,
    e_counters,
    shift_samples,
    t,
)

NOW = t("23:00")


async def kpis_both_ways(url, cfg, machine=None, end="14:00"):
    """(raw-only, rollups + raw edges) results, rollups refreshed first."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await refresh(conn, cfg, NOW)
        out = []
        for use in (False, True):
            engine = KpiEngine(cfg, use_rollups=use)
            if machine:
                out.append(await engine.machine(conn, machine, t("06:00"), t(end), now=NOW))
            else:
                out.append(await engine.line(conn, "l1", t("06:00"), t(end), now=NOW))
    return out


def readings(machine: str, states: list, counters: dict[str, list]) -> dict[tuple[str, str], list]:
    """One machine's inputs of a KPI.md example as (machine, tag name) -> samples."""
    out = {(machine, "state"): shift_samples(states)}
    return out | {(machine, f"{name}_count"): samples for name, samples in counters.items()}


async def test_example_a(database_url: str) -> None:
    cfg = plant_config(
        [M("m1")],
        shifts=[shift("early", "06:00", "14:00", A_BREAKS)],
    )
    ids = setup_db(database_url, cfg)
    await write(database_url, ids, readings("m1", A_STATES, a_counters()))
    raw, rolled = await kpis_both_ways(database_url, cfg, "m1")
    for k in (raw, rolled):
        assert (k.planned_time_s, k.planned_stop_s, k.planned_busy_time_s) == (
            28_800,
            3_600,
            25_200,
        )
        assert (k.run_time_s, k.down_time_s, k.failure_events) == (22_380, 2_820, 1)
        assert (k.total_count, k.reject_count, k.good_count) == (19_271, 423, 18_848)
        assert k.availability == pytest.approx(0.888095, abs=1e-6)
        assert k.performance == pytest.approx(0.861081, abs=1e-6)
        assert k.quality == pytest.approx(0.978050, abs=1e-6)
        assert k.oee == pytest.approx(0.747937, abs=1e-6)
        assert k.flags == []
    assert_same(raw, rolled)


async def test_example_b(database_url: str) -> None:
    cfg = plant_config(
        [M("m1", counters={"total": ("cumulative", None), "good": ("cumulative", None)})],
        shifts=[shift("early", "06:00", "14:00", B_BREAKS)],
    )
    ids = setup_db(database_url, cfg)
    await write(database_url, ids, readings("m1", B_STATES, b_counters()))
    raw, rolled = await kpis_both_ways(database_url, cfg, "m1")
    for k in (raw, rolled):
        assert (k.planned_busy_time_s, k.run_time_s, k.down_time_s) == (27_000, 24_300, 2_700)
        assert k.failure_events == 3
        assert k.availability == pytest.approx(0.900000, abs=1e-6)
        assert k.performance == pytest.approx(0.793045, abs=1e-6)
        assert k.quality == pytest.approx(0.978050, abs=1e-6)
        assert k.oee == pytest.approx(0.698074, abs=1e-6)
        assert k.throughput_per_hour == pytest.approx(2_569.466667, abs=1e-6)
        assert k.scrap_ratio == pytest.approx(0.021950, abs=1e-6)
        assert (k.mtbf_s, k.mttr_s, k.reject_count) == (8_100, 900, 423)
    assert_same(raw, rolled)


async def test_example_d_line(database_url: str) -> None:
    cfg = plant_config(
        [
            M("m1", 60, {"good": ("cumulative", None), "reject": ("cumulative", None)}),
            M("m2", 30, {"total": ("cumulative", None), "reject": ("cumulative", None)}),
        ],
        shifts=[shift("early", "06:00", "14:00")],
        constraint="m1",
        outputs=["m2"],
    )
    ids = setup_db(database_url, cfg)
    counters = d_counters()
    await write(
        database_url,
        ids,
        readings("m1", D_M1_STATES, counters["m1"]) | readings("m2", D_M2_STATES, counters["m2"]),
    )
    raw, rolled = await kpis_both_ways(database_url, cfg)
    for res in (raw, rolled):
        assert res.machines["m1"].oee == pytest.approx(0.812500, abs=1e-6)
        assert res.machines["m2"].oee == pytest.approx(0.401042, abs=1e-6)
        k = res.kpis
        assert (k.good_count, k.reject_count, k.total_count) == (385, 15, 400)
        assert k.availability == pytest.approx(0.875, abs=1e-6)
        assert k.performance == pytest.approx(0.952381, abs=1e-6)
        assert k.quality == pytest.approx(0.9625, abs=1e-6)
        assert k.oee == pytest.approx(0.802083, abs=1e-6)
        assert k.planned_busy_time_s == 28_800
    assert_same(raw.kpis, rolled.kpis)


async def test_example_e_line_units(database_url: str) -> None:
    cfg = plant_config(
        [
            M("filler", 0.5),
            M("capper", 0.45),
            M("packer", 6.0, {"good": ("cumulative", None), "reject": ("cumulative", None)}, 12),
        ],
        shifts=[shift("early", "06:00", "07:00")],
        constraint="filler",
        outputs=["packer"],
    )
    ids = setup_db(database_url, cfg)
    counters = e_counters()
    series: dict = {}
    for m in ("filler", "capper", "packer"):
        states = E_FILLER_STATES if m == "filler" else E_RUNNING
        series |= readings(m, states, counters[m])
    await write(database_url, ids, series)
    raw, rolled = await kpis_both_ways(database_url, cfg, end="07:00")
    for res in (raw, rolled):
        assert_example_e(res.kpis)
        assert res.machines["packer"].good_count == 430  # cases: the machine's own unit
    assert_same(raw.kpis, rolled.kpis)
