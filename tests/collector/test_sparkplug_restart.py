"""A collector process restarted while a Sparkplug edge node publishes: `shopfloor run` with a
sparkplug source against the simulators' edge node through a real Mosquitto, stopped with
SIGTERM and then SIGKILLed, started again each time. The new host knows no session: the node's
next data comes before any birth it saw, so it asks for a Rebirth (`rebirths_sent` in /healthz),
the node answers (the truth file's births record), and values resume in the database, each
stored once and equal to the truth's."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from adapters.base import Quality
from localenv.mosquitto import Mosquitto
from simulators import truth as truth_mod
from simulators.frontends.sparkplug import SparkplugFrontEnd
from simulators.runner import SimulatorThread
from tests.e2e.test_sparkplug_edge import METRICS, truth_values
from tests.e2e.test_sparkplug_truth import configs
from tests.services import eventually, free_port

SPEED = 60.0
EXE = str(Path(sys.executable).parent / "shopfloor")
TRUTH_KEY = {
    "stop_reason": "reason",
    "good_count": "good_counter",
    "reject_count": "reject_counter",
}
Row = tuple[str, dt.datetime, float | None, int]


def start_collector(
    config: Path, url: str, spool: Path, port: int, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *(EXE, "-v", "run", "--config", str(config), "--database-url", url),
                *("--spool-dir", str(spool), "--port", str(port)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )


def packer_rows(url: str) -> list[Row]:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute(
                "SELECT t.name, r.time, r.value, r.quality FROM readings r "
                "JOIN tags t ON t.id = r.tag_id WHERE t.machine_id = 'packer' ORDER BY r.time"
            ).fetchall()
    except psycopg.Error:  # not migrated yet: the collector creates the tables
        return []


async def sparkplug_extra(port: int) -> dict[str, Any]:
    """The sparkplug source's counters in /healthz; {} while the API does not answer."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"http://127.0.0.1:{port}/healthz")
    except httpx.HTTPError:
        return {}
    (source,) = [s for s in r.json()["sources"] if s["protocol"] == "sparkplug"]
    return dict(source["extra"], connected=source["connected"])


async def test_collector_restart_asks_for_rebirth_and_values_resume(
    database_url: str, tmp_path: Path
) -> None:
    broker = Mosquitto(workdir=tmp_path / "mosquitto").start()
    api_port = free_port()
    sim_cfg, live = configs(broker.port, api_port)
    config = tmp_path / "plant.yaml"
    config.write_text(yaml.safe_dump(live.model_dump(mode="json", exclude_unset=True)))
    truth_path, spool, log = tmp_path / "truth.jsonl", tmp_path / "spool", tmp_path / "c.log"
    sims = SimulatorThread(sim_cfg, speed=SPEED, seed=9, truth_path=truth_path)
    rows: list[Row] = []
    extra: dict[str, Any] = {}

    async def load() -> None:
        rows[:] = await asyncio.to_thread(packer_rows, database_url)

    async def health() -> None:
        extra.clear()
        extra.update(await sparkplug_extra(api_port))

    def what() -> str:
        return f"{len(rows)} rows, {extra}; log:\n{log.read_text()}"

    collector = start_collector(config, database_url, spool, api_port, log)
    restarts: list[dt.datetime] = []
    try:
        await eventually(lambda: extra.get("connected") is True, 30, what, each=health)
        edge = sims.start().frontend("packer-edge")
        assert isinstance(edge, SparkplugFrontEnd)
        await eventually(lambda: len(rows) > 10, 30, what, each=load)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            answered = edge.rebirths
            collector.send_signal(sig)
            code = await asyncio.to_thread(collector.wait, 30)
            assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), log.read_text()
            await asyncio.sleep(0.5)  # the node publishes on while no host reads
            restarts.append(dt.datetime.now(dt.UTC))
            collector = start_collector(config, database_url, spool, api_port, log)
            # asked (more than once if data before the births came rebirth_wait_s apart) and
            # every request answered
            await eventually(
                lambda answered=answered: (
                    extra.get("rebirths_sent", 0) >= 1
                    and edge.rebirths == answered + extra["rebirths_sent"]
                ),
                30,
                what,
                each=health,
            )
            assert extra["data_before_birth"] >= 1, what()
            assert extra["seq_gaps"] == 0, what()
            await eventually(
                lambda: any(ts > restarts[-1] and name == "temperature" for name, ts, _, _ in rows),
                30,
                what,
                each=load,
            )
        await asyncio.to_thread(sims.stop)
        await eventually(lambda: rows[-1][3] == Quality.BAD, 30, what, each=load)  # NDEATH
        collector.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(collector.wait, 30) == 0, log.read_text()
    finally:
        sims.stop()
        if collector.poll() is None:
            collector.kill()
            collector.wait()
        broker.stop()

    truth = truth_mod.load(truth_path)
    births = [r for r in truth.records if r["type"] == "sparkplug" and r["what"] == "births"]
    assert [b["reason"] for b in births] == ["connect"] + ["rebirth"] * edge.rebirths
    assert all(b["bd_seq"] == 0 for b in births)  # the node kept its session throughout
    for restart, next_one in zip(restarts, [*restarts[1:], truth.end], strict=True):
        assert any(restart < b["_ts"] < next_one for b in births[1:]), (restart, births)
    with psycopg.connect(database_url) as conn:
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY tag_id, time "
            "HAVING count(*) > 1) d"
        ).fetchone()
        rejected = conn.execute("SELECT count(*) FROM rejected_readings").fetchone()
    assert (dupes, rejected) == ((0,), (0,))
    # every Good value stored is one the truth holds at its stamp, after each restart too
    good = [(name, ts, v) for name, ts, v, q in rows if q == Quality.GOOD]
    for name, ts, value in good:
        assert value in truth_values(truth, TRUTH_KEY.get(name, name), ts), (name, ts, value)
    assert {name for name, ts, _ in good if ts > restarts[1]} == set(METRICS)
