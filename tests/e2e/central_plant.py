"""A plant of three lines on three edge PCs, one protocol each, writing into one central database
(issue #17), for tests/e2e/test_central.py: its config files, its `shopfloor` processes, and a
database link that can be cut.

The lines are the demo's filler (OPC UA), capper (Modbus TCP) and packer (MQTT), one machine a
line. The simulators run all three from one config (one model, one truth file); each edge's
config declares its own line and source only, with the ideal cycle times per wall second, as
`shopfloor demo --speed` does (the counter plausibility check uses them against wall time).
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
SPEED = 20.0
STOP_WAIT_S = 60.0  # a SIGTERMed collector stores what it holds and exits well within this

# edge -> (its line, that line's one machine, the source it is read through)
EDGES: dict[str, tuple[str, str, str]] = {
    "line1-pc": ("line1", "filler", "filler-plc"),
    "line2-pc": ("line2", "capper", "capper-plc"),
    "line3-pc": ("line3", "packer", "packer-gateway"),
}

# Busier than the demo (simulated seconds): state changes within seconds of wall time.
BUSY: dict[str, dict[str, Any]] = {
    "filler": {"mtbf": {"mean_s": 120}, "mttr": {"mean_s": 30}},
    "capper": {"mtbf": {"mean_s": 150}, "mttr": {"mean_s": 30}},
    "packer": {"mtbf": {"mean_s": 60}, "mttr": {"mean_s": 20}},
}


def plant_document(ports: Mapping[str, int], topic_root: str) -> dict[str, Any]:
    """The whole plant as the simulators see it; `ports` by source name."""
    demo = yaml.safe_load(DEMO.read_text())
    machines = {m["id"]: m for m in demo["lines"][0]["machines"]}
    sources = {s["name"]: s for s in demo["sources"]}
    opcua = dict(sources["filler-plc"])
    opcua["endpoint"] = f"opc.tcp://127.0.0.1:{ports['filler-plc']}/shopfloor/sim"
    modbus = dict(sources["capper-labeler-plc"], name="capper-plc", port=ports["capper-plc"])
    modbus["tags"] = [t for t in modbus["tags"] if t["machine"] == "capper"]
    mqtt = dict(sources["packer-gateway"], port=ports["packer-gateway"])
    mqtt["tags"] = [
        dict(t, topic=t["topic"].replace("demo/line1", topic_root)) for t in mqtt["tags"]
    ]
    simulation = dict(demo["simulation"], follow_calendar=False)
    simulation["machines"] = {
        m: {**simulation["machines"][m], **BUSY[m]} for _, m, _ in EDGES.values()
    }
    return {
        "plant": "Central test plant",
        "stop_reasons": demo["stop_reasons"],
        "lines": [
            {"id": line, "name": f"{machines[m]['name']} line", "machines": [machines[m]]}
            for line, m, _ in EDGES.values()
        ],
        "sources": [opcua, modbus, mqtt],
        "simulation": simulation,
    }


def edge_document(plant: Mapping[str, Any], edge: str) -> dict[str, Any]:
    """What edge `edge` runs: its line and its source, cycle times per wall second."""
    line_id, _, source = EDGES[edge]
    line = copy.deepcopy(next(line for line in plant["lines"] if line["id"] == line_id))
    for m in line["machines"]:
        m["ideal_cycle_s"] = m["ideal_cycle_s"] / SPEED
    return {
        "plant": plant["plant"],
        "stop_reasons": plant["stop_reasons"],  # plant-wide, declared alike by every edge
        "lines": [line],
        "sources": [s for s in plant["sources"] if s["name"] == source],
        "settings": {"edge": edge},
    }


def write_yaml(path: Path, doc: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(doc), sort_keys=False))
    return path


def shopfloor_exe() -> str:
    return str(Path(sys.executable).parent / "shopfloor")  # the venv the tests run in


class Shopfloor:
    """One `shopfloor` process (a collector or an API) as a plant runs it, its output in a log."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.args, self.log = name, args, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self.name} runs"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}: {' '.join(self.args)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [shopfloor_exe(), "-v", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )

    async def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, STOP_WAIT_S)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def collector(
    name: str, config: Path, url: str, workdir: Path, *, api_port: int | None = None
) -> Shopfloor:
    """`shopfloor collect` (or `run` with its API on `api_port`, for its /healthz)."""
    verb = ["run", "--port", str(api_port)] if api_port else ["collect"]
    args = [*verb, "--config", str(config), "--database-url", url]
    return Shopfloor(
        name, [*args, "--spool-dir", str(workdir / f"spool-{name}")], workdir / f"{name}.log"
    )


async def health(port: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"http://127.0.0.1:{port}/healthz")
        body: dict[str, Any] = r.json()
        return body


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def synced_at(url: str) -> dict[str, Any]:
    """Each edge's last plant sync; {} before the first (or before the schema exists)."""
    try:
        return dict(query(url, "SELECT name, synced_at FROM edges"))
    except psycopg.errors.UndefinedTable:
        return {}


def plant_revision(url: str) -> int:
    sql = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM plant_revision"
    return int(query(url, sql)[0][0])
