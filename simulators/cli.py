"""`shopfloor simulate`: start every simulator a config describes until Ctrl-C or SIGTERM.

The lead's `collector/cli.py` mounts this as a sub-command through `configure_parser` and `run`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from config import DEMO_CONFIG, ConfigError, load_config
from simulators.model import SimulationError
from simulators.runner import run_simulators

log = logging.getLogger("shopfloor.simulate")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEMO_CONFIG,
        help="config file whose sources to simulate (default: the demo line)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        help="time compression; 60 makes a simulated minute last a second "
        "(default: simulation.speed, else 1)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default: simulation.seed, else 1)")
    parser.add_argument(
        "--truth",
        type=Path,
        metavar="PATH",
        help="write the ground truth as JSON lines to PATH",
    )


async def _serve(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with run_simulators(
            cfg, speed=args.speed, seed=args.seed, truth_path=args.truth
        ) as sims:
            # Where each simulator listens is the command's output, not a log line: print it.
            for line in sims.describe():
                print(f"listening: {line}")
            truth = f", truth {args.truth}" if args.truth else ""
            print(
                f"started in {sims.start_seconds:.2f} s; speed {sims.speed:g}, "
                f"seed {sims.seed}{truth}; Ctrl-C stops",
                flush=True,
            )
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait(
                {stopper, asyncio.ensure_future(sims.wait())}, return_when=asyncio.FIRST_COMPLETED
            )
            stopper.cancel()
            log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_serve(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (SimulationError, ValueError, OSError, RuntimeError) as exc:
        print(f"shopfloor simulate: {exc}", file=sys.stderr)
        return 1
