"""The `shopfloor` command: one verb per job (db, check, simulate, browse, …).

Each verb's module is imported when that verb runs, so `shopfloor check` works even where an
optional part (the simulators, say) cannot be imported.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from collector.logs import setup_logging

if TYPE_CHECKING:
    from config import ShopfloorConfig
    from localenv.cluster import LocalCluster


def _cmd_check(args: argparse.Namespace) -> int:
    """Every problem with its key path and line (exit 1), else the warnings and OK (exit 0)."""
    from config import ConfigError, check_config

    try:
        checked = check_config(args.config, checks=[_node_id_problems])
    except ConfigError as exc:
        print(f"{exc.filename}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for warning in checked.warnings:
        print(f"{args.config}: warning: {warning}", file=sys.stderr)
    cfg = checked.config
    machines = sum(len(line.machines) for line in cfg.lines)
    print(
        f"{args.config}: OK ({len(cfg.lines)} line(s), {machines} machine(s), "
        f"{len(cfg.sources)} source(s), {len(cfg.tags())} tag(s)"
        + (f", {len(checked.warnings)} warning(s))" if checked.warnings else ")")
    )
    return 0


def _node_id_problems(cfg: ShopfloorConfig) -> list[tuple[str, str]]:
    """OPC UA node id syntax: config cannot import adapters, so the command checks it."""
    from adapters.errors import ConfigurationError
    from adapters.opcua.nodeid import parse_node

    problems = []
    for si, source in enumerate(cfg.sources):
        if source.protocol != "opcua":
            continue
        for ti, tag in enumerate(source.tags):
            try:
                parse_node(tag.node)
            except (ConfigurationError, ValueError) as exc:  # ValueError: int() of odd digits
                problems.append((f"sources[{si}].tags[{ti}].node", str(exc)))
    return problems


def _cluster(args: argparse.Namespace) -> LocalCluster:
    from localenv.cluster import LocalCluster

    return LocalCluster.at(args.dir, getattr(args, "port", None))


def _cmd_db(args: argparse.Namespace) -> int:
    from localenv.cluster import ClusterError
    from storage.migrate import MigrationError

    try:
        return _DB_ACTIONS[args.action](args)
    except (ClusterError, MigrationError) as exc:
        print(f"shopfloor db {args.action}: {exc}", file=sys.stderr)
        return 1


def _db_up(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    cluster.start()
    print(cluster.url)
    return 0


def _db_down(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    cluster.stop()
    print(f"stopped ({cluster.data_dir})")
    return 0


def _db_status(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    if not cluster.initialized():
        print(f"no cluster in {cluster.base} (run `shopfloor db up`)")
        return 3
    if not cluster.running():
        print(f"stopped: {cluster.data_dir}")
        return 3
    from localenv.database import connect
    from storage.migrate import schema_version

    with connect(cluster.url) as conn:
        version = schema_version(conn)
    print(f"running: {cluster.url} (data {cluster.data_dir}, schema version {version})")
    return 0


def _db_migrate(args: argparse.Namespace) -> int:
    from config import ConfigError, load_config
    from localenv.database import connect, resolve_database_url
    from storage.migrate import migrate
    from storage.plant_sync import sync_plant

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    url = resolve_database_url(cfg, url=args.database_url, cluster_dir=args.dir)
    with connect(url) as conn:
        applied = migrate(conn)
        report = sync_plant(conn, cfg)
    names = ", ".join(f"{m.version:03d}_{m.name}" for m in applied) or "none (up to date)"
    print(f"migrations applied: {names}")
    print(
        f"plant model synced: {report.lines} line(s), {report.machines} machine(s), "
        f"{report.tags} tag(s), {report.cycle_changes} ideal cycle change(s)"
    )
    return 0


_DB_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": _db_up,
    "down": _db_down,
    "status": _db_status,
    "migrate": _db_migrate,
}


def _delegate(
    module: str, entry: str = "run"
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """A verb implemented by another module's `configure_parser` and `run` (or `entry`)."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), entry)(args)

    def configure(parser: argparse.ArgumentParser) -> None:
        try:
            importlib.import_module(module).configure_parser(parser)
        except ImportError as exc:  # keep the other verbs usable
            parser.set_defaults(_unavailable=f"{module}: {exc}")

    return configure, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopfloor", description="Shop-floor data: PLCs to TimescaleDB, KPIs over HTTP."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    check = verbs.add_parser("check", help="validate a config file and list every problem")
    check.add_argument("config", type=Path)
    check.set_defaults(func=_cmd_check)

    db = verbs.add_parser("db", help="the private local TimescaleDB; schema migrations")
    db_verbs = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in [
        ("up", "initialise (first time) and start; print its URL"),
        ("down", "stop it"),
        ("status", "is it running, and where"),
        ("migrate", "create or upgrade the schema and sync the plant model"),
    ]:
        p = db_verbs.add_parser(action, help=text)
        p.add_argument(
            "--dir",
            type=Path,
            help="cluster directory (default: the user's data dir; /var/lib for root)",
        )
        if action == "up":
            p.add_argument(
                "--port",
                type=int,
                help="TCP port on 127.0.0.1 (default 54329, or the one used before)",
            )
        if action == "migrate":
            p.add_argument("--config", type=Path, required=True)
            p.add_argument(
                "--database-url",
                help="overrides settings.database.url and SHOPFLOOR_DATABASE_URL",
            )
        p.set_defaults(func=_cmd_db)

    for verb, module, entry, text in [
        ("demo", "collector.demo", "run", "the demo line, all local: Ctrl-C stops everything"),
        ("run", "collector.runner", "run", "collect from the sources and serve the HTTP API"),
        ("collect", "collector.runner", "run_collect", "collect only (no HTTP API)"),
        ("serve", "collector.runner", "run_serve", "serve the HTTP API only"),
        ("simulate", "simulators.cli", "run", "run the bundled PLC simulators a config describes"),
        ("browse", "adapters.opcua.browse_cli", "run", "list an OPC UA server's variables"),
    ]:
        configure, run = _delegate(module, entry)
        p = verbs.add_parser(verb, help=text)
        configure(p)
        p.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if getattr(args, "_unavailable", None):
        print(f"shopfloor {args.verb}: not available: {args._unavailable}", file=sys.stderr)
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
