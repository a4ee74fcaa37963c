"""`shopfloor demo`: the demo line on this machine with one command.

Starts (or reuses) the private TimescaleDB and migrates it for the demo plant, a Mosquitto on a
free port, the demo line's PLC simulators on free ports, and the collector and HTTP API for them;
prints where everything is; runs until Ctrl-C or SIGTERM, then stops what it started (a database
that was already running is left so).

The API's port: `--port N` is that port, and if another process listens there the demo says so and
exits 1 before starting anything. Without `--port` it is the configured one (8080), and if that
is in use any free port, said beside the printed URL: a demo should come up, and its URLs are
printed anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from collector.runner import (
    api_failure,
    api_port,
    api_port_taken,
    run_services,
    stop_on_signals,
    until,
    with_api,
)
from config import ShopfloorConfig, load_config
from config.sources import MqttSource
from localenv.mosquitto import Mosquitto, free_port


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """`shopfloor simulate`'s options (--config, --speed, --seed, --truth), plus --db-dir and the
    API's --port."""
    from simulators.cli import configure_parser as simulate_options

    simulate_options(parser)
    parser.add_argument(
        "--db-dir",
        type=Path,
        help="private database directory (default as `shopfloor db up`)",
    )
    parser.add_argument(
        "--port",
        type=api_port,
        help="the HTTP API's port (default: settings.api.port, 8080, or a free one if that is "
        "in use)",
    )


def at_speed(cfg: ShopfloorConfig, speed: float) -> ShopfloorConfig:
    """The plant as the collector and the API see a run at `speed`: timestamps are wall time
    (docs/simulators.md) while parts come `speed` times faster and stops last `speed` times
    shorter, so each ideal cycle time and the short-stop limit are divided by `speed`; else a
    demo at speed 60 would show a performance of 6,000 % and no stop longer than a short one."""
    if speed == 1:
        return cfg
    lines = [
        line.model_copy(
            update={
                "machines": [
                    m.model_copy(update={"ideal_cycle_s": m.ideal_cycle_s / speed})
                    for m in line.machines
                ]
            }
        )
        for line in cfg.lines
    ]
    kpi = cfg.settings.kpi
    settings = cfg.settings.model_copy(
        update={"kpi": kpi.model_copy(update={"short_stop_s": kpi.short_stop_s / speed})}
    )
    return cfg.model_copy(update={"lines": lines, "settings": settings})


async def _serve(args: argparse.Namespace) -> int:
    from localenv.cluster import LocalCluster

    cfg, moved = _api_port(load_config(args.config), args.port)
    if cfg is None:
        print(
            f"shopfloor demo: port {args.port} on 127.0.0.1 is in use by another process: "
            "choose another with --port",
            file=sys.stderr,
        )
        return 1
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
            await _run(args, cfg, cluster.url, broker, ports, workdir, truth, stop, moved)
    except Exception as exc:  # the API's port taken since it was checked, say
        message = api_failure(exc)
        if message is None:
            raise
        print(f"shopfloor demo: {message}", file=sys.stderr)
        return 1
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
    moved: str,
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
        live = at_speed(with_ports(cfg, ports), args.speed)
        if args.speed != 1:
            print(
                f"KPIs at speed {args.speed:g}: ideal cycle times and short_stop_s / {args.speed:g}"
            )
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
        print(f"dashboard    {api}/{moved}")
        print(f"HTTP API     {api}/api/v1/lines  (OpenAPI: {api}/docs)")
        print(f"health       {api}/healthz  {api}/metrics")
        print("collecting. Ctrl-C stops.", flush=True)
        waiter = asyncio.ensure_future(sims.wait())
        await asyncio.wait({waiter, services}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stop.set()
        await services


def _api_port(cfg: ShopfloorConfig, port: int | None) -> tuple[ShopfloorConfig | None, str]:
    """The config with the API's port (None: `port` is in use), and what to add to its URL when
    the configured port was in use and a free one is used instead."""
    if port is not None:
        chosen = with_api(cfg, host=None, port=port)
        return (None if api_port_taken(chosen) else chosen), ""
    if not api_port_taken(cfg):
        return cfg, ""
    configured = cfg.settings.api.port
    note = f"  (port {configured} is in use; --port N chooses one)"
    return with_api(cfg, host=None, port=free_port()), note


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_serve(args))
