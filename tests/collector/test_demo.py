"""`shopfloor demo` as a user runs it: starts everything, serves (the API on `--port`), and
Ctrl-C stops it all."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg

from collector.demo import at_speed
from config import load_config
from localenv.cluster import world_traversable_tempdir
from tests.services import eventually, free_port

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


def test_demo_starts_serves_and_stops_cleanly() -> None:
    base = world_traversable_tempdir("shopfloor-test-demo-")
    exe = Path(sys.executable).parent / "shopfloor"
    api_port = free_port()
    proc = subprocess.Popen(
        [str(exe), "demo", "--db-dir", str(base / "db"), "--speed", "20", "--port", str(api_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if "Ctrl-C stops" in line:
                break
        text = "".join(out)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else text
        url = re.search(r"^database\s+(\S+)", text, re.M)[1]  # type: ignore[index]
        modbus_port = int(re.search(r"Modbus TCP server 127\.0\.0\.1:(\d+)", text)[1])  # type: ignore[index]
        api = re.search(r"^HTTP API\s+(http://127\.0\.0\.1:\d+)/api/v1/lines", text, re.M)[1]  # type: ignore[index]
        assert api == f"http://127.0.0.1:{api_port}", text  # the port asked for, nothing else
        assert f"{api}/docs" in text and f"{api}/healthz" in text, text
        assert re.search(rf"^dashboard\s+{re.escape(api)}/$", text, re.M), text
        assert "in use" not in text, text
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM machines").fetchone() == (4,)
        socket.create_connection(("127.0.0.1", modbus_port), timeout=2).close()
        # Collecting: every source connected, readings arriving, the API answering.
        seen: dict[str, object] = {}

        def collecting() -> bool:
            health = seen["health"] = httpx.get(f"{api}/healthz", timeout=5).json()
            with psycopg.connect(url) as conn:
                rows = conn.execute("SELECT count(DISTINCT tag_id) FROM readings").fetchone()[0]
            seen["tags with readings"] = rows
            connected = [s["connected"] for s in health["sources"]]
            return len(connected) == 3 and all(connected) and rows >= 12

        asyncio.run(eventually(collecting, within=60, what=lambda: str(seen), interval=0.5))
        lines = httpx.get(f"{api}/api/v1/lines", timeout=5).json()
        machines = [m["id"] for m in lines["data"][0]["machines"]]
        assert machines == ["filler", "capper", "labeler", "packer"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert proc.stdout.read().strip().endswith("stopped")
        for port in (modbus_port, api_port):  # the ports are free again
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run([str(exe), "db", "down", "--dir", str(base / "db")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_at_speed_compresses_the_kpi_durations_and_nothing_else() -> None:
    cfg = load_config(DEMO)
    fast = at_speed(cfg, 20)
    cycles = {m.id: m.ideal_cycle_s for line in cfg.lines for m in line.machines}
    assert {m.id: m.ideal_cycle_s for line in fast.lines for m in line.machines} == {
        k: v / 20 for k, v in cycles.items()
    }
    assert fast.settings.kpi.short_stop_s == cfg.settings.kpi.short_stop_s / 20 == 6.0
    assert fast.settings.kpi.max_gap_s == cfg.settings.kpi.max_gap_s  # wall-clock arrival
    assert fast.sources == cfg.sources and fast.calendars == cfg.calendars
    assert at_speed(cfg, 1) is cfg
