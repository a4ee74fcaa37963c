"""The packer as a Sparkplug B edge node -> Mosquitto -> host application in the collector ->
TimescaleDB -> HTTP API: its KPIs equal the simulators' truth file.

Sparkplug timestamps are whole milliseconds: the edge node truncates each event's time. The
window's edges are whole seconds, so every part and every state change falls on the same side
of them as in the truth: counts and failures are exact, and each class's seconds differ from
the truth's by at most 1 ms per state change in the window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest

from config import ShopfloorConfig
from localenv.mosquitto import Mosquitto, free_port
from simulators import truth as truth_mod
from simulators.runner import SimulatorThread, with_simulation
from tests.e2e.test_line_truth import SPEED, class_seconds, collector_config
from tests.e2e.test_sparkplug_edge import sparkplug_config
from tests.services import eventually, services_running, unique

SEED = 11
RUN_S = 12.0  # wall seconds in the compared window
EXACT_S = 0.001
BUSY = {"packer": {"mtbf": {"mean_s": 60}, "mttr": {"mean_s": 20}}}


def configs(port: int, api_port: int) -> tuple[ShopfloorConfig, ShopfloorConfig]:
    """(simulators, collector): the packer's Sparkplug source only; the collector's copy as
    tests/e2e/test_line_truth.py makes it comparable (no calendar, cycle per wall second)."""
    cfg = sparkplug_config(port, unique("L"))
    cfg = cfg.model_copy(update={"sources": [s for s in cfg.sources if s.name == "packer-edge"]})
    assert cfg.simulation is not None
    machines = cfg.simulation.model_dump()["machines"]
    for machine, changes in BUSY.items():
        machines[machine] = {**machines.get(machine, {}), **changes}
    sim = with_simulation(cfg, follow_calendar=False, machines=machines)
    return sim, collector_config(cfg, api_port)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_sparkplug_packer_kpis_equal_the_truth(database_url: str, tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    broker = Mosquitto(workdir=tmp_path / "mosquitto").start()
    sim_cfg, live = configs(broker.port, free_port())
    sims = SimulatorThread(sim_cfg, speed=SPEED, seed=SEED, truth_path=truth_path)
    api = f"http://127.0.0.1:{live.settings.api.port}/api/v1"
    try:
        async with (
            services_running(live, database_url, tmp_path / "spool"),
            httpx.AsyncClient(base_url=api, timeout=30) as client,
        ):
            sims.start()
            state: dict[str, object] = {}

            async def poll() -> None:
                r = await client.get("/machines")
                r.raise_for_status()
                packer = next(m for m in r.json()["data"] if m["id"] == "packer")
                state.update(packer["state"] or {})

            await eventually(lambda: bool(state.get("since")), 30, "packer state", each=poll)
            now = dt.datetime.now(dt.UTC)
            start = now.replace(microsecond=0) + dt.timedelta(seconds=2)
            end = start + dt.timedelta(seconds=RUN_S)
            await asyncio.sleep((end - now).total_seconds() + 1.5)
            await asyncio.to_thread(sims.stop)  # NDEATH: every metric BAD after `end`
            t = truth_mod.load(truth_path)
            assert t.end is not None and t.end > end
            params = {"start": iso(start), "end": iso(end)}

            async def stored() -> None:
                r = await client.get(
                    "/machines/packer/timeline",
                    params={"start": iso(end), "end": iso(end + dt.timedelta(seconds=5))},
                )
                r.raise_for_status()
                state["after"] = any(i["class"] == "unknown" for i in r.json()["intervals"])

            await eventually(lambda: bool(state.get("after")), 30, "the NDEATH stored", each=stored)
            r = await client.get("/machines/packer/kpis", params=params)
            assert r.status_code == 200, r.text
            k = r.json()["kpis"]
    finally:
        sims.stop()
        broker.stop()

    want = truth_mod.window(t, "packer", start, end)
    changes = sum(1 for r in t.state_records("packer") if start <= r["_ts"] < end)
    tol = changes * 0.001 + EXACT_S
    got = class_seconds(k)
    line = f"truth {want.seconds} {want.good}/{want.reject} failures {want.failures}; got {got} {k['good_count']}/{k['reject_count']} failures {k['failure_events']} ({changes} changes)"
    print("\n" + line)
    assert k["unknown_time_s"] == pytest.approx(0, abs=EXACT_S), line
    for cls, seconds in want.seconds.items():
        assert got[cls] == pytest.approx(seconds, abs=tol), (cls, line)
    assert (k["good_count"], k["reject_count"]) == (want.good, want.reject), line
    assert k["failure_events"] == want.failures, line
    assert want.good > 0 and want.failures > 0, line  # the window shows parts and stops
