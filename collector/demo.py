"""`shopfloor demo`: the demo line on this machine with one command.

Starts (or reuses) the private TimescaleDB and migrates it for the demo plant, a Mosquitto on a
free port, the demo line's PLC simulators on free ports, and the collector and HTTP API for them;
prints where everything is; runs until Ctrl-C or SIGTERM, then stops what it started (a database
that was already running is left so).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import tempfile
from pathlib import Path

from collector.runner import run_services, stop_on_signals, until
from config import ShopfloorConfig, load_config
from config.sources import MqttSource
from localenv.mosquitto import Mosquitto, free_port


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """`shopfloor simulate`'s options (--config, --speed, --seed, --truth), plus --db-dir."""
    from simulators.cli import configure_parser as simulate_options

    simulate_options(parser)
    parser.add_argument(
        "--db-dir",
        type=Path,
        help="private database directory (default as `shopfloor db up`)",
    )


async def _serve(args: argparse.Namespace) -> int:
    from localenv.cluster import LocalCluster

    cfg = load_config(args.config)
    cluster = LocalCluster.at(args.db_dir)
    started_db = not cluster.running()
    cluster.start()  # the collector migrates it and syncs the plant on first contact
    workdir = Path(tempfile.mkdtemp(prefix="shopfloor-demo-"))
    truth = args.truth or workdir / "truth.jsonl"  # kept only when the user names a path
    broker = Mosquitto(workdir / "mosquitto").start()
    ports = {s.name: broker.port if isinstance(s, MqttSource) else free_port() for s in cfg.sources}
    stop = asyncio.Event()
    try:
        with stop_on_signals(stop):
            await _run(args, cfg, cluster.url, broker, ports, workdir, truth, stop)
    finally:
        broker.stop()
        if started_db:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("stopped")
    return 0


async def _run(
    args: argparse.Namespace,
    cfg: ShopfloorConfig,
    url: str,
    broker: Mosquitto,
    ports: dict[str, int],
    workdir: Path,
    truth: Path,
    stop: asyncio.Event,
) -> None:
    """Simulators, then the collector and API for them; until `stop` or a part ends."""
    from simulators.runner import run_simulators, with_ports

    async with run_simulators(
        cfg,
        speed=args.speed,
        seed=args.seed,
        ports=ports,
        truth_path=truth,
        workdir=workdir,
    ) as sims:
        print(f"database     {url}")
        print(f"mqtt broker  mqtt://127.0.0.1:{broker.port}")
        for line in sims.describe():
            print(f"simulator    {line}")
        print(f"truth file   {truth}")
        live = _api_on_free_port(with_ports(cfg, ports))
        api = f"http://127.0.0.1:{live.settings.api.port}"
        services_ready = asyncio.Event()
        services = asyncio.create_task(
            run_services(
                live,
                url,
                collect=True,
                serve=True,
                spool_dir=workdir / "spool",
                stop=stop,
                ready=services_ready,
            )
        )
        await until(services_ready, [services])  # a failed start raises here
        print(f"HTTP API     {api}/api/v1/lines  (OpenAPI: {api}/docs)")
        print(f"health       {api}/healthz  {api}/metrics")
        print("collecting. Ctrl-C stops.", flush=True)
        waiter = asyncio.ensure_future(sims.wait())
        await asyncio.wait({waiter, services}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stop.set()
        await services


def _api_on_free_port(cfg: ShopfloorConfig) -> ShopfloorConfig:
    """The configured API port if it is free (8080 by default), otherwise any free one."""
    port = cfg.settings.api.port
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            port = free_port()
    api = cfg.settings.api.model_copy(update={"port": port})
    return cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"api": api})})


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_serve(args))
