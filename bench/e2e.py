"""End-to-end collector benchmark: generated traffic -> `shopfloor collect` -> TimescaleDB.

    .venv/bin/python -m bench.e2e [--phases mqtt,modbus,opcua,sparkplug,memory] [--warmup 5]
                                  [--window 20]
                                  [--database-url URL] [--profile DIR]

Per protocol, in one run: readings/s stored in the database over a steady window (warm-up
excluded), the collector's CPU seconds per 10k readings and peak RSS (VmHWM), measured on the
collector alone: it runs as its own process (`shopfloor collect` on a generated config), and so
does every load generator (bench.e2e_load). Beside it, a bare protocol client on the same
traffic gives the ceiling: a plain paho subscriber, a plain pymodbus read loop, a plain asyncua
subscription, a plain paho subscriber decoding Sparkplug B with protobuf. Between the two, our adapter alone (the collector's adapter class on the same
config, in its own process, with a sink that only counts) separates what the adapter costs from
what routing and storing cost (PostgreSQL shares the cores). The memory phase configures 10,000
MQTT tags with traffic on all of them.

Without --database-url (or SHOPFLOOR_DATABASE_URL) a private TimescaleDB cluster is started in a
temp dir and removed afterwards; each collector phase gets a fresh database. --profile DIR runs
the collector under cProfile and prints where its main thread spends its time. docs/e2e.md
explains the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import yaml

from bench.e2e_load import (
    MODBUS_PER_REQUEST,
    MQTT_TOPIC,
    OPCUA_QUEUE_SIZE,
    OPCUA_SAMPLING_MS,
    machine_name,
)
from bench.e2e_sparkplug import EDGE, GROUP
from localenv.cluster import LocalCluster, world_traversable_tempdir
from localenv.mosquitto import Mosquitto, free_port, wait_port

PYTHON = sys.executable
SHOPFLOOR = str(Path(sys.executable).with_name("shopfloor"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
MQTT_VALUES = 20  # tags per topic: a gateway's JSON object of 20 values
STATE_MAP = {0: "planned_stop", 1: "running", 2: "idle", 3: "down", 4: "setup"}

T = TypeVar("T")


# -- processes -----------------------------------------------------------------------------------


class Proc:
    """A child process whose JSON stdout lines ({"t", "n"} samples) are collected by a thread."""

    def __init__(
        self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.lines: list[dict[str, Any]] = []
        self.log = log_dir / f"{name}.log"
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self.log.open("ab"),
            env={**os.environ, **(env or {})},
            start_new_session=True,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(line))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def until(
        self, check: Callable[[], T | None], what: str, timeout: float, interval: float = 0.05
    ) -> T:
        """check() until it gives a value; fails at once when this process has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found is not None:
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before {what}; see {self.log}"
                )
            time.sleep(interval)
        raise RuntimeError(f"{self.name}: no {what} in {timeout}s; see {self.log}")

    def wait_for(self, key: str, timeout: float = 120) -> dict[str, Any]:
        """The first JSON line holding `key` (servers report {"ready": true})."""
        return self.until(
            lambda: next((line for line in self.lines if key in line), None), f"{key!r}", timeout
        )

    def count_at(self, t: float) -> float:
        """The running count at wall time t, interpolated between the per-second samples."""
        samples = [(s["t"], s["n"]) for s in self.lines if "t" in s]
        if not samples or t < samples[0][0] or t > samples[-1][0]:
            raise RuntimeError(f"{self.name}: no samples around t={t:.1f}; see {self.log}")
        for (ta, na), (tb, nb) in itertools.pairwise(samples):
            if ta <= t <= tb:
                return na + (nb - na) * (t - ta) / (tb - ta) if tb > ta else nb
        return samples[-1][1]

    def rate(self, t0: float, t1: float) -> float:
        return (self.count_at(t1) - self.count_at(t0)) / (t1 - t0)

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


# -- database ------------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    admin = server_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tags_synced(url: str, expected: int) -> bool | None:
    """True once the collector (it migrates and syncs the plant at start) has its tags stored."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(url) as conn:
        n = conn.execute("SELECT count(*) FROM tags").fetchone()
        if n and n[0] >= expected:
            return True
    return None


def count_rows(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert row is not None
    return int(row[0])


# -- generated configs ---------------------------------------------------------------------------


def plant(machines: int, spool_dir: Path) -> dict[str, Any]:
    return {
        "plant": "e2e bench",
        "lines": [
            {
                "id": "bench",
                "machines": [
                    {"id": machine_name(i), "ideal_cycle_s": 1.0, "state_map": STATE_MAP}
                    for i in range(machines)
                ],
            }
        ],
        "settings": {"collector": {"spool_dir": str(spool_dir)}},
    }


def mqtt_config(port: int, topics: int, spool_dir: Path, protocol: str) -> dict[str, Any]:
    """One machine per topic; its 20 tags read fields v1..v20 of the same JSON message."""
    cfg = plant(topics, spool_dir)
    cfg["sources"] = [
        {
            "name": "mqtt-load",
            "protocol": "mqtt",
            "host": "127.0.0.1",
            "port": port,
            "qos": 1,
            "protocol_version": protocol,
            "client_id": f"shopfloor-e2e-{uuid.uuid4().hex[:8]}",
            "topic_template": MQTT_TOPIC,
            "tags": [
                {
                    "machine": machine_name(i),
                    "name": f"v{k}",
                    "field": f"v{k}",
                    "timestamp_field": "ts",
                    "timestamp_format": "epoch_ms",
                }
                for i in range(topics)
                for k in range(1, MQTT_VALUES + 1)
            ],
        }
    ]
    return cfg


def sparkplug_config(port: int, devices: int, spool_dir: Path) -> dict[str, Any]:
    """One machine per Sparkplug device of the bench edge node; its 20 tags are metrics v1..v20."""
    cfg = plant(devices, spool_dir)
    cfg["sources"] = [
        {
            "name": "sparkplug-load",
            "protocol": "sparkplug",
            "host": "127.0.0.1",
            "port": port,
            "client_id": f"shopfloor-e2e-{uuid.uuid4().hex[:8]}",
            "host_id": "shopfloor-e2e",
            "tags": [
                {
                    "machine": machine_name(i),
                    "name": f"v{k}",
                    "group": GROUP,
                    "edge_node": EDGE,
                    "device": machine_name(i),
                    "metric": f"v{k}",
                }
                for i in range(devices)
                for k in range(1, MQTT_VALUES + 1)
            ],
        }
    ]
    return cfg


def modbus_config(port: int, registers: int, poll_s: float, spool_dir: Path) -> dict[str, Any]:
    """`registers` uint16 tags at 0..n-1 (requests of 125), 25 tags per machine."""
    per_machine = 25
    cfg = plant((registers + per_machine - 1) // per_machine, spool_dir)
    cfg["sources"] = [
        {
            "name": "modbus-load",
            "protocol": "modbus",
            "host": "127.0.0.1",
            "port": port,
            "poll_interval_s": poll_s,
            "timeout_s": 2.0,
            "tags": [
                {"machine": machine_name(a // per_machine), "name": f"r{a}", "address": a}
                for a in range(registers)
            ],
        }
    ]
    return cfg


def opcua_config(
    port: int, variables: int, namespace: int, publishing_ms: float, spool_dir: Path
) -> dict[str, Any]:
    per_machine = 25
    cfg = plant((variables + per_machine - 1) // per_machine, spool_dir)
    cfg["sources"] = [
        {
            "name": "opcua-load",
            "protocol": "opcua",
            "endpoint": f"opc.tcp://127.0.0.1:{port}/bench",
            "publishing_interval_ms": publishing_ms,
            "sampling_interval_ms": OPCUA_SAMPLING_MS,  # as the bare subscription
            "queue_size": OPCUA_QUEUE_SIZE,
            "tags": [
                {
                    "machine": machine_name(i // per_machine),
                    "name": f"x{i}",
                    "node": f"ns={namespace};s=v{i}",
                }
                for i in range(variables)
            ],
        }
    ]
    return cfg


# -- one measurement -----------------------------------------------------------------------------


@dataclass
class Result:
    phase: str
    tags: int
    readings_per_s: float = 0.0
    cpu_per_10k: float = 0.0
    cpu_share: float = 0.0  # collector CPU seconds per wall second
    peak_rss_mb: float = 0.0  # VmHWM: includes start-up (config load, plant sync)
    rss_mb: float = 0.0  # VmRSS at the end of the steady window
    offered_per_s: float | None = None  # what the load generator sent, in readings/s
    bare_per_s: float | None = None  # the bare client's readings/s on the same traffic
    bare_cpu_per_10k: float | None = None
    adapter_per_s: float | None = None  # our adapter alone (counting sink) on the same traffic
    adapter_cpu_per_10k: float | None = None
    unit: str = "readings"  # what one bare count is
    per_unit: int = 1  # readings per bare unit (MQTT: values per message)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if not self.bare_per_s:
            return None
        return self.readings_per_s / self.bare_per_s

    @property
    def adapter_ratio(self) -> float | None:
        if not self.bare_per_s or self.adapter_per_s is None:
            return None
        return self.adapter_per_s / self.bare_per_s


@dataclass
class Bench:
    args: argparse.Namespace
    server_url: str
    work: Path

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def windows(self) -> tuple[float, float]:
        return self.args.warmup, self.args.window

    @property
    def duration(self) -> float:
        """How long load generators and bare clients run: past the window, then SIGTERM."""
        return self.args.warmup + self.args.window + 30

    def role(self, name: str, role: str, module: str = "bench.e2e_load", **options: object) -> Proc:
        """A role of `module` (bench.e2e_load, bench.e2e_sparkplug) in its own process; options
        become `--key value` arguments."""
        argv = [PYTHON, "-m", module, role]
        for key, value in options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        return Proc(name, argv, self.work)

    @contextlib.contextmanager
    def server(self, phase: str, **options: object) -> Iterator[tuple[int, dict[str, Any]]]:
        """The `PHASE-server` role on a free port, once it listens: (port, its ready line)."""
        port = free_port()
        server = self.role(f"{phase}-server", f"{phase}-server", port=port, **options)
        try:
            ready = server.wait_for("ready")
            wait_port(port)
            yield port, ready
        finally:
            server.stop()

    def bare(self, phase: str, **options: object) -> tuple[float, float]:
        """The `PHASE-bare` client over the steady window: (rate, CPU s per 10k)."""
        proc = self.role(f"{phase}-bare", f"{phase}-bare", duration=self.duration, **options)
        try:
            rate, cpu, _ = self.measure_bare(proc)
        finally:
            proc.stop()
        return rate, cpu

    def measure_bare(
        self, proc: Proc, load: Proc | _Group | None = None
    ) -> tuple[float, float, float]:
        """(bare rate, bare cpu per 10k, offered rate) over the steady window."""
        warmup, window = self.windows()
        time.sleep(warmup)
        t0, c0 = time.time(), cpu_seconds(proc.pid)
        time.sleep(window)
        t1, c1 = time.time(), cpu_seconds(proc.pid)
        time.sleep(1.2)  # one more sample after t1
        rate = proc.rate(t0, t1)
        offered = load.rate(t0, t1) if load is not None else 0.0
        return rate, (c1 - c0) / (rate * (t1 - t0)) * 1e4 if rate else 0.0, offered

    def adapter(
        self,
        phase: str,
        cfg: dict[str, Any],
        start_load: Callable[[], Proc | _Group | None],
        result: Result,
    ) -> None:
        """Our adapter alone (bench.e2e_load `adapter`) on cfg's one source, then the load.

        Measured like the bare client (same warm-up and window, CPU from /proc), so the two
        differ only in the client code: the adapter's decoding into `Reading`s and its
        bookkeeping, not routing or storage."""
        path = self.work / f"{phase}-adapter.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        (source,) = cfg["sources"]
        proc = self.role(
            f"{phase}-adapter",
            "adapter",
            config=path,
            source=source["name"],
            duration=self.duration,
        )
        load: Proc | _Group | None = None
        try:
            proc.wait_for("ready")
            time.sleep(1.0)  # subscriptions made, first polls done: as for the collector
            load = start_load()
            rate, cpu, offered = self.measure_bare(proc, load)
        finally:
            if load is not None:
                load.stop()
            code = proc.stop()
            if code not in (0, None):
                result.notes.append(f"adapter alone exited with {code}; see {proc.log}")
        end = next((line for line in proc.lines if "errors" in line), {})
        if end.get("errors"):
            result.notes.append(
                f"adapter alone: {end['errors']} errors, last: {end.get('last_error')}"
            )
        result.adapter_per_s, result.adapter_cpu_per_10k = rate, cpu
        offered_text = f", offered {offered * result.per_unit:,.0f}/s" if load is not None else ""
        self.log(f"  adapter alone: {rate:,.0f} readings/s, {cpu:.3f} CPU s / 10k{offered_text}")

    def run_collector(
        self,
        phase: str,
        cfg: dict[str, Any],
        tags: int,
        start_load: Callable[[], Proc | _Group | None],
        result: Result,
    ) -> None:
        """Start `shopfloor collect` on cfg, then the load; measure rows into the database."""
        warmup, window = self.windows()
        with fresh_database(self.server_url) as url:
            path = self.work / f"{phase}.yaml"
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            argv = [SHOPFLOOR]
            if self.args.profile:
                self.args.profile.mkdir(parents=True, exist_ok=True)
                prof = self.args.profile / f"{phase}.prof"
                argv = [PYTHON, "-m", "cProfile", "-o", str(prof), "-m", "collector.cli"]
            argv += ["collect", "--config", str(path), "--database-url", url]
            collector = Proc(f"collector-{phase}", argv, self.work)
            load: Proc | _Group | None = None
            try:
                collector.until(lambda: tags_synced(url, tags), f"{tags} tags synced", 120, 0.25)
                time.sleep(1.0)  # subscriptions made, first polls done
                load = start_load()
                with psycopg.connect(url, autocommit=True) as conn:
                    time.sleep(warmup)
                    t0, c0, r0 = time.time(), cpu_seconds(collector.pid), count_rows(conn)
                    time.sleep(window)
                    t1, c1, r1 = time.time(), cpu_seconds(collector.pid), count_rows(conn)
                    mem = memory_kb(collector.pid)
                time.sleep(1.2)
                rows = r1 - r0
                result.readings_per_s = rows / (t1 - t0)
                result.cpu_per_10k = (c1 - c0) / rows * 1e4 if rows else float("nan")
                result.cpu_share = (c1 - c0) / (t1 - t0)
                result.peak_rss_mb = mem["VmHWM"] / 1024
                result.rss_mb = mem["VmRSS"] / 1024
                if load is not None and any("t" in s for s in load.lines):
                    result.offered_per_s = load.rate(t0, t1) * result.per_unit
            finally:
                if load is not None:
                    load.stop()
                code = collector.stop(timeout=60)
                if code not in (0, None):
                    result.notes.append(f"collector exited with {code}")
        self.log(f"  collector: {result.readings_per_s:,.0f} readings/s into the database")
        if self.args.profile:
            self.print_profile(phase)

    def print_profile(self, phase: str) -> None:
        prof = self.args.profile / f"{phase}.prof"
        if not prof.exists():
            self.log(f"no profile written for {phase}")
            return
        print(f"\n--- cProfile of the collector's main thread, {phase} (top 30 by tottime) ---")
        pstats.Stats(str(prof), stream=sys.stdout).sort_stats("tottime").print_stats(30)

    # -- phases ----------------------------------------------------------------------------------

    def mqtt(self, topics: int, phase: str = "mqtt", bare: bool = True) -> Result:
        a = self.args
        tags = topics * MQTT_VALUES
        result = Result(phase, tags, unit="messages", per_unit=MQTT_VALUES)
        publishers = a.mqtt_publishers

        def start_publishers(port: int) -> _Group:
            """One process per share of the topics; their counts add up."""
            share = topics // publishers
            return _Group(
                [
                    self.role(
                        f"{phase}-pub{p}",
                        "mqtt-pub",
                        port=port,
                        first=p * share,
                        topics=share,
                        values=MQTT_VALUES,
                        rate=a.mqtt_rate / publishers,
                        duration=self.duration,
                        seed=p + 1,
                    )
                    for p in range(publishers)
                ]
            )

        if bare:
            with self.broker(phase) as broker:
                self.log(f"{phase}: bare paho subscriber ...")
                sub = self.role(
                    f"{phase}-bare",
                    "mqtt-bare",
                    port=broker.port,
                    protocol=a.mqtt_protocol,
                    duration=self.duration,
                )
                time.sleep(1.5)
                pubs = start_publishers(broker.port)
                try:
                    rate, cpu, offered = self.measure_bare(sub, pubs)
                finally:
                    pubs.stop()
                    sub.stop()
                result.bare_per_s = rate
                result.bare_cpu_per_10k = cpu
                self.log(
                    f"  bare: {rate:,.0f} values/s ({rate / MQTT_VALUES:,.0f} msgs/s), "
                    f"offered {offered * MQTT_VALUES:,.0f} values/s"
                )
            with self.broker(phase) as broker:
                self.log(f"{phase}: our adapter alone, {tags} tags ...")
                cfg = mqtt_config(
                    broker.port, topics, self.work / f"spool-{phase}", a.mqtt_protocol
                )
                self.adapter(phase, cfg, lambda: start_publishers(broker.port), result)
        with self.broker(phase) as broker:
            self.log(f"{phase}: collector, {tags} tags ...")
            cfg = mqtt_config(broker.port, topics, self.work / f"spool-{phase}", a.mqtt_protocol)
            self.run_collector(phase, cfg, tags, lambda: start_publishers(broker.port), result)
        return result

    def sparkplug(self) -> Result:
        """One edge node, a device per machine, DDATA of 20 metrics by alias at QoS 0."""
        a, phase = self.args, "sparkplug"
        devices = a.sparkplug_devices
        tags = devices * MQTT_VALUES
        result = Result(phase, tags, unit="values")

        def start_edge(port: int) -> Proc:
            return self.role(
                f"{phase}-pub",
                "sparkplug-pub",
                module="bench.e2e_sparkplug",
                port=port,
                topics=devices,
                values=MQTT_VALUES,
                rate=a.sparkplug_rate,
                duration=self.duration,
            )

        with self.broker(phase) as broker:
            self.log(f"{phase}: bare protobuf-decoding subscriber ...")
            sub = self.role(
                f"{phase}-bare",
                "sparkplug-bare",
                module="bench.e2e_sparkplug",
                port=broker.port,
                duration=self.duration,
            )
            time.sleep(1.5)
            edge = start_edge(broker.port)
            try:
                rate, cpu, offered = self.measure_bare(sub, edge)
            finally:
                edge.stop()
                sub.stop()
            result.bare_per_s, result.bare_cpu_per_10k = rate, cpu
            self.log(f"  bare: {rate:,.0f} values/s, offered {offered:,.0f} values/s")
        with self.broker(phase) as broker:
            self.log(f"{phase}: our adapter alone, {tags} tags ...")
            cfg = sparkplug_config(broker.port, devices, self.work / f"spool-{phase}")
            self.adapter(phase, cfg, lambda: start_edge(broker.port), result)
        with self.broker(phase) as broker:
            self.log(f"{phase}: collector, {tags} tags ...")
            cfg = sparkplug_config(broker.port, devices, self.work / f"spool-{phase}")
            self.run_collector(phase, cfg, tags, lambda: start_edge(broker.port), result)
        return result

    @contextlib.contextmanager
    def broker(self, phase: str) -> Iterator[Mosquitto]:
        broker = Mosquitto(workdir=self.work / f"mosquitto-{phase}-{uuid.uuid4().hex[:6]}").start()
        try:
            yield broker
        finally:
            broker.stop()

    def modbus(self) -> Result:
        a = self.args
        n = a.modbus_registers
        result = Result("modbus", n, unit="registers")
        with self.server("modbus", registers=n) as (port, _):
            self.log("modbus: bare pymodbus client ...")
            result.bare_per_s, result.bare_cpu_per_10k = self.bare("modbus", port=port, registers=n)
            self.log(
                f"  bare: {result.bare_per_s:,.0f} registers/s "
                f"({result.bare_per_s / MODBUS_PER_REQUEST:,.0f} requests/s "
                f"of {MODBUS_PER_REQUEST})"
            )
            cfg = modbus_config(port, n, a.modbus_poll_s, self.work / "spool-modbus")
            self.log(f"modbus: our adapter alone, {n} tags, poll {a.modbus_poll_s}s ...")
            self.adapter("modbus", cfg, lambda: None, result)
            self.log(f"modbus: collector, {n} tags, poll {a.modbus_poll_s}s ...")
            self.run_collector("modbus", cfg, n, lambda: None, result)
        return result

    def opcua(self) -> Result:
        a = self.args
        n = a.opcua_variables
        result = Result("opcua", n, unit="notifications")
        with self.server("opcua", variables=n, period=a.opcua_period_s) as (port, ready):
            ns = int(ready["namespace"])
            result.offered_per_s = n / a.opcua_period_s
            self.log("opcua: bare asyncua subscription ...")
            result.bare_per_s, result.bare_cpu_per_10k = self.bare(
                "opcua", port=port, namespace=ns, variables=n, publishing_ms=a.opcua_publishing_ms
            )
            self.log(f"  bare: {result.bare_per_s:,.0f} notifications/s")
            cfg = opcua_config(port, n, ns, a.opcua_publishing_ms, self.work / "spool-opcua")
            self.log(f"opcua: our adapter alone, {n} tags ...")
            self.adapter("opcua", cfg, lambda: None, result)
            self.log(f"opcua: collector, {n} tags ...")
            self.run_collector("opcua", cfg, n, lambda: None, result)
        return result

    def memory(self) -> Result:
        """10,000 tags configured (500 topics x 20 values), traffic on all of them."""
        topics = self.args.memory_tags // MQTT_VALUES
        return self.mqtt(topics, phase="memory", bare=False)


class _Group:
    """Several load processes read as one: their counts add up."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [line for p in self.procs for line in p.lines]

    def rate(self, t0: float, t1: float) -> float:
        return sum(p.rate(t0, t1) for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


# -- report --------------------------------------------------------------------------------------


def table(results: list[Result], goals: dict[str, str]) -> str:
    head = (
        "| phase | tags | readings/s into DB | offered/s | bare client/s | vs bare | adapter/s "
        "| adapter vs bare | CPU s / 10k readings | collector CPU | RSS (peak) | goal |"
    )
    rows = [head, "|" + "---|" * 12]
    for r in results:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        offered = f"{r.offered_per_s:,.0f}" if r.offered_per_s else "-"
        bare = f"{r.bare_per_s:,.0f}" if r.bare_per_s else "-"
        alone = f"{r.adapter_per_s:,.0f}" if r.adapter_per_s is not None else "-"
        alone_ratio = f"{r.adapter_ratio:.2f}" if r.adapter_ratio is not None else "-"
        rows.append(
            f"| {r.phase} | {r.tags:,} | {r.readings_per_s:,.0f} | {offered} | {bare} | {ratio} "
            f"| {alone} | {alone_ratio} | {r.cpu_per_10k:.3f} | {r.cpu_share:.0%} "
            f"| {r.rss_mb:.0f} ({r.peak_rss_mb:.0f}) MB "
            f"| {goals.get(r.phase, '')} |"
        )
    return "\n".join(rows)


def _fmt(cpu: float | None) -> str:
    return "-" if cpu is None else f"{cpu:.3f}"


def goal_text(r: Result) -> str:
    checks = []
    if r.phase == "mqtt":
        checks.append((r.readings_per_s >= 50_000, ">= 50k/s"))
    if r.phase in ("mqtt", "modbus", "opcua", "sparkplug") and r.adapter_ratio is not None:
        checks.append((r.adapter_ratio >= 0.8, "adapter >= 0.8 x bare"))
    if r.phase in ("mqtt", "modbus", "opcua") and r.ratio is not None:
        checks.append((r.ratio >= 0.8, "collector >= 0.8 x bare"))
    if r.phase == "memory":
        checks.append((r.peak_rss_mb < 200, "peak < 200 MB"))
    return ", ".join(f"{text}: {'met' if good else 'NOT met'}" for good, text in checks)


def run(args: argparse.Namespace, server_url: str, work: Path) -> None:
    bench = Bench(args, server_url, work)
    load_before = os.getloadavg()[0]
    results = []
    for phase in args.phases.split(","):
        phase = phase.strip()
        if phase not in ("mqtt", "modbus", "opcua", "sparkplug", "memory"):
            raise SystemExit(f"unknown phase {phase!r}: use mqtt, modbus, opcua, sparkplug, memory")
        if phase == "mqtt":
            results.append(bench.mqtt(args.mqtt_topics))
        else:
            results.append(getattr(bench, phase)())
    goals = {r.phase: goal_text(r) for r in results}
    print(
        f"\nwarm-up {args.warmup:.0f}s, steady window {args.window:.0f}s; {os.cpu_count()} CPUs "
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after: other work "
        "on the machine slows every figure); the collector is one `shopfloor collect` process"
    )
    print(table(results, goals))
    for r in results:
        if r.bare_cpu_per_10k is not None or r.adapter_cpu_per_10k is not None:
            print(
                f"  {r.phase} CPU s / 10k readings: bare {_fmt(r.bare_cpu_per_10k)}, adapter alone "
                f"{_fmt(r.adapter_cpu_per_10k)}, collector {r.cpu_per_10k:.3f}"
            )
    for r in results:
        for note in r.notes:
            print(f"  {r.phase}: {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default="mqtt,modbus,opcua,sparkplug,memory")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds excluded at start")
    parser.add_argument("--window", type=float, default=20.0, help="steady window, seconds")
    parser.add_argument("--mqtt-topics", type=int, default=50, help="x 20 tags each")
    parser.add_argument(
        "--mqtt-rate", type=float, default=0, help="messages/s in all; 0: as fast as possible"
    )
    parser.add_argument("--mqtt-publishers", type=int, default=1, help="publisher processes")
    parser.add_argument(
        "--mqtt-protocol",
        choices=["5", "3.1.1"],
        default="5",
        help="MQTT version of the collector's source and of the bare subscriber alike",
    )
    parser.add_argument("--modbus-registers", type=int, default=1000)
    parser.add_argument(
        "--modbus-poll-s",
        type=float,
        default=0.001,
        help="collector poll interval; the default polls back to back, as the bare loop reads",
    )
    parser.add_argument("--opcua-variables", type=int, default=1000)
    parser.add_argument("--opcua-period-s", type=float, default=0.1)
    parser.add_argument("--opcua-publishing-ms", type=float, default=100)
    parser.add_argument("--sparkplug-devices", type=int, default=50, help="x 20 metrics each")
    parser.add_argument(
        "--sparkplug-rate",
        type=float,
        default=10_000,
        help="DDATA messages/s (x 20 metrics); QoS 0 is not paced by the broker, and an "
        "unpaced publisher takes a whole core; 0: as fast as possible",
    )
    parser.add_argument("--memory-tags", type=int, default=10_000)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the collector")
    parser.add_argument("--database-url", default=os.environ.get("SHOPFLOOR_DATABASE_URL"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    args = parser.parse_args()
    base = world_traversable_tempdir("shopfloor-e2e-")
    work = base / "work"
    work.mkdir()
    print(f"work dir {work}", file=sys.stderr)
    cluster = None
    try:
        url = args.database_url
        if not url:
            cluster = LocalCluster(base=base / "db", port=free_port())
            cluster.start()
            url = cluster.url
        run(args, url, work)
    finally:
        if cluster is not None:
            cluster.stop(mode="immediate")
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
