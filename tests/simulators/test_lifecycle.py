"""Start, stop and the CLI: quick to start, nothing left behind, no MQTT message lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from config import DEMO_CONFIG
from simulators import SimulatorThread, run_simulators
from simulators.truth import load
from tests.services import Mosquitto, free_port, wait_port
from tests.simulators.helpers import HANG_GUARD_S, demo_config, eventually, port_of
from tests.simulators.test_frontends import Subscriber


def port_is_free(port: int) -> bool:
    """Can a new server listen here (as a restarted simulator would, with SO_REUSEADDR)?"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


async def test_start_stop_frees_ports_and_delivers_every_part(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    cfg = demo_config(mosquitto.port)
    ports = [port_of(cfg, "filler-plc"), port_of(cfg, "capper-labeler-plc")]
    subscriber = Subscriber(mosquitto.port)
    await eventually(subscriber.subscribed.is_set, "subscribed")
    threads_before = set(threading.enumerate())
    began = time.perf_counter()
    async with run_simulators(cfg, speed=200, seed=9, truth_path=tmp_path / "t.jsonl") as sims:
        started = time.perf_counter() - began
        assert not any(port_is_free(p) for p in ports)
        await eventually(
            lambda: (
                sum(
                    r["type"] == "count" and r["machine"] == "packer"
                    for r in load(tmp_path / "t.jsonl").records
                )
                >= 10
            ),
            "ten packed cases",
        )
        stopping = time.perf_counter()
    stopped = time.perf_counter() - stopping
    print(
        f"\nstart {started:.2f} s (model+servers {sims.start_seconds:.2f} s), stop {stopped:.2f} s"
    )
    assert all(port_is_free(p) for p in ports)
    # paho's network thread is gone (pooled executor workers may stay, by design)
    assert not [t for t in set(threading.enumerate()) - threads_before if "paho" in t.name]
    truth = load(tmp_path / "t.jsonl")
    assert truth.end is not None
    parts = sorted(
        r["ts"] for r in truth.records if r["type"] == "count" and r["machine"] == "packer"
    )
    await eventually(
        lambda: len(subscriber.on("demo/line1/packer/part")) >= len(parts),
        "every packed case arrives",
    )
    subscriber.close()
    assert sorted(m["ts"] for m in subscriber.on("demo/line1/packer/part")) == parts
    mqtt = sims.frontend("packer-gateway")
    assert (mqtt.dropped, mqtt.published >= len(parts)) == (0, True)


def test_background_thread_for_synchronous_callers(tmp_path: Path) -> None:
    cfg = demo_config()
    cfg = cfg.model_copy(update={"sources": cfg.sources[1:2]})  # the Modbus server alone
    port = port_of(cfg, "capper-labeler-plc")
    with SimulatorThread(cfg, speed=50, truth_path=tmp_path / "t.jsonl") as sims:
        wait_port(port)
        assert sims.frontend("capper-labeler-plc").units == [1, 2]
    assert port_is_free(port)
    assert load(tmp_path / "t.jsonl").end is not None


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_starts_listens_and_stops_cleanly(
    stop_signal: int, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    opcua, modbus = free_port(), free_port()
    text = DEMO_CONFIG.read_text()
    for old, new in (("48400", opcua), ("15020", modbus), ("18830", mosquitto.port)):
        text = text.replace(old, str(new))
    config_path = tmp_path / "plant.yaml"
    config_path.write_text(text)
    truth = tmp_path / "truth.jsonl"
    code = (
        "import argparse, simulators.cli as c; p = argparse.ArgumentParser(); "
        "c.configure_parser(p); raise SystemExit(c.run(p.parse_args()))"
    )
    began = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--config",
            str(config_path),
            "--speed",
            "30",
            "--seed",
            "4",
            "--truth",
            str(truth),
        ],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_port(opcua, timeout=HANG_GUARD_S)
        wait_port(modbus, timeout=HANG_GUARD_S)
        ready = time.perf_counter() - began
        while truth.stat().st_size == 0 if truth.exists() else True:
            time.sleep(0.02)
        proc.send_signal(stop_signal)
        out, _ = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"\nCLI process listening {ready:.2f} s after spawn (includes interpreter start)")
    assert proc.returncode == 0, out
    assert f"opc.tcp://127.0.0.1:{opcua}/shopfloor/sim" in out
    assert f"127.0.0.1:{modbus}" in out and f"127.0.0.1:{mosquitto.port}" in out
    assert "stopped" in out
    assert port_is_free(opcua) and port_is_free(modbus)
    assert load(truth).header["seed"] == 4 and load(truth).end is not None


async def test_mqtt_publisher_rides_out_a_broker_outage(tmp_path: Path) -> None:
    """Parts made while the broker is down are kept, sent after it returns, and acknowledged."""
    broker = Mosquitto(workdir=tmp_path / "broker").start()  # private: this test stops it
    try:
        cfg = demo_config(broker.port)
        cfg = cfg.model_copy(update={"sources": cfg.sources[2:]})  # the MQTT publisher alone
        truth_path = tmp_path / "t.jsonl"

        def parts() -> int:
            return sum(
                r["type"] == "count" and r["machine"] == "packer" for r in load(truth_path).records
            )

        async with run_simulators(cfg, speed=200, seed=3, truth_path=truth_path) as sims:
            mqtt = sims.frontend("packer-gateway")
            await eventually(lambda: parts() >= 3, "packed cases before the outage")
            broker.stop()
            during = parts()
            await eventually(lambda: parts() >= during + 5, "packed cases during the outage")
            backlog = mqtt.unacknowledged_mids()  # held by paho while the broker is away
            assert len(backlog) >= 5
            broker.start()
            await eventually(
                lambda: not backlog & mqtt.unacknowledged_mids(),
                "the backlog acknowledged after the outage",
            )
        made = parts()
        assert mqtt.dropped == 0
        # every part and every state change was handed to paho and acknowledged by the broker
        states = sum(
            r["type"] == "state" and r["machine"] == "packer" for r in load(truth_path).records
        )
        assert mqtt.published >= made + states
    finally:
        broker.stop()
