"""The simulator's Sparkplug edge node dies twice, through a real Mosquitto, the collector and
TimescaleDB: first its connection is cut (the broker publishes its will NDEATH; paho reconnects
and the node is born again), then it stops (its own NDEATH). Each time every metric of the node
is stored Bad with no value at one instant, not before the death the truth file records, and
the machine's timeline is `unknown` from there until the next birth (or the window's end)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import psycopg

from adapters.base import Quality
from localenv.mosquitto import Mosquitto, free_port
from simulators import truth as truth_mod
from simulators.frontends.sparkplug import SparkplugFrontEnd
from simulators.runner import SimulatorThread
from tests.e2e.test_sparkplug_edge import METRICS
from tests.e2e.test_sparkplug_truth import configs
from tests.services import eventually, services_running

SPEED = 60.0
Row = tuple[str, dt.datetime, float | None, int]


def packer_rows(url: str) -> list[Row]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT t.name, r.time, r.value, r.quality FROM readings r "
            "JOIN tags t ON t.id = r.tag_id WHERE t.machine_id = 'packer' ORDER BY r.time"
        ).fetchall()


def deaths(rows: list[Row]) -> list[dt.datetime]:
    """The instants at which every packer metric was stored Bad."""
    bad: dict[dt.datetime, set[str]] = {}
    for name, ts, _, quality in rows:
        if quality == Quality.BAD:
            bad.setdefault(ts, set()).add(name)
    return sorted(ts for ts, names in bad.items() if names == set(METRICS))


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()


async def test_ndeath_of_the_simulated_node_stores_bad_and_unknown(
    database_url: str, tmp_path: Path
) -> None:
    truth_path = tmp_path / "truth.jsonl"
    broker = Mosquitto(workdir=tmp_path / "mosquitto").start()
    sim_cfg, live = configs(broker.port, free_port())
    sims = SimulatorThread(sim_cfg, speed=SPEED, seed=7, truth_path=truth_path)
    api = f"http://127.0.0.1:{live.settings.api.port}/api/v1"
    rows: list[Row] = []

    async def load() -> None:
        rows[:] = await asyncio.to_thread(packer_rows, database_url)

    try:
        async with services_running(live, database_url, tmp_path / "spool"):
            edge = sims.start().frontend("packer-edge")
            assert isinstance(edge, SparkplugFrontEnd)
            await eventually(lambda: len(rows) > 10, 30, "packer readings stored", each=load)
            edge.drop_connection()
            await eventually(lambda: len(deaths(rows)) == 1, 30, "the will stored", each=load)
            first = deaths(rows)[0]
            await eventually(
                lambda: any(ts > first and q == Quality.GOOD for _, ts, _, q in rows),
                30,
                "values after the new births",
                each=load,
            )
            await asyncio.to_thread(sims.stop)
            await eventually(lambda: len(deaths(rows)) == 2, 30, "the stop's NDEATH", each=load)
            async with httpx.AsyncClient(base_url=api, timeout=30) as client:
                r = await client.get(
                    "/machines/packer/timeline",
                    params={
                        "start": iso(first),
                        "end": iso(deaths(rows)[1] + dt.timedelta(seconds=2)),
                    },
                )
                assert r.status_code == 200, r.text
                intervals = r.json()["intervals"]
    finally:
        sims.stop()
        broker.stop()

    first, last = deaths(rows)
    t = truth_mod.load(truth_path)
    notes = [r for r in t.records if r["type"] == "sparkplug"]
    assert [(n["what"], n.get("reason"), n["bd_seq"]) for n in notes] == [
        ("births", "connect", 0),
        ("death", "dropped", 0),
        ("births", "connect", 1),
        ("death", "stop", 1),
    ]
    assert t.end is not None and notes[-1]["_ts"] >= t.end  # recorded as the node stopped
    born = notes[2]["_ts"]
    births = born.replace(microsecond=born.microsecond // 1000 * 1000)  # their stamp: whole ms
    # each death: every metric Bad, valueless, stored at (or after) the death the node recorded
    for died, note in ((first, notes[1]), (last, notes[3])):
        assert died >= note["_ts"]
        at_death = [(name, v, q) for name, ts, v, q in rows if ts == died]
        assert sorted(at_death) == sorted((name, None, Quality.BAD) for name in METRICS)
    # nothing Good between the will and the births, Good values after them, none after the stop
    assert first < births
    assert not [x for x in rows if first < x[1] < births and x[3] == Quality.GOOD]
    assert {x[0] for x in rows if births <= x[1] < last and x[3] == Quality.GOOD} >= {
        "state",
        "temperature",
    }
    assert not [x for x in rows if x[1] > last]
    # the timeline: unknown from each death, known in between
    spans = [
        (dt.datetime.fromisoformat(i["start"]), dt.datetime.fromisoformat(i["end"]), i["class"])
        for i in intervals
    ]
    unknown = [(s, e) for s, e, c in spans if c == "unknown"]
    assert [s for s, _ in unknown] == [first, last], spans
    assert unknown[0][1] == births, spans
    assert any(c != "unknown" and first < s < last for s, _, c in spans), spans
