"""The `shopfloor` command: one verb per job (db, check, simulate, browse, …).

Each verb's module is imported when that verb runs, so `shopfloor check` works even where an
optional part (the simulators, say) cannot be imported.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from collector.logs import setup_logging

if TYPE_CHECKING:
    from config import ShopfloorConfig
    from localenv.cluster import LocalCluster
    from storage.rollup_basis import Rebuild
    from storage.rollups import RefreshReport


def _cmd_check(args: argparse.Namespace) -> int:
    """Every problem with its key path and line (exit 1), else the warnings and OK (exit 0)."""
    from collector.runner import ownership_check
    from config import ConfigError, check_config

    notes: list[str] = []
    owned = ownership_check(_database_url(args.database_url), notes)
    try:
        checked = check_config(args.config, checks=[_node_id_problems, owned])
    except ConfigError as exc:
        print(f"{exc.filename}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for warning in checked.warnings:
        print(f"{args.config}: warning: {warning}", file=sys.stderr)
    for note in notes:
        print(f"{args.config}: {note}", file=sys.stderr)
    cfg = checked.config
    machines = sum(len(line.machines) for line in cfg.lines)
    print(
        f"{args.config}: OK ({len(cfg.lines)} line(s), {machines} machine(s), "
        f"{len(cfg.sources)} source(s), {len(cfg.tags())} tag(s)"
        + (f", {len(checked.warnings)} warning(s))" if checked.warnings else ")")
    )
    return 0


def _database_url(url: str | None) -> Callable[[ShopfloorConfig], str | None]:
    """`check`'s database: --database-url, else settings.database.url, else none to ask."""

    def url_of(cfg: ShopfloorConfig) -> str | None:
        configured = cfg.settings.database.url
        return url or (configured.get_secret_value() if configured else None)

    return url_of


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
    from storage.ownership import OwnershipConflict
    from storage.plant_sync import sync_plant

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    url = resolve_database_url(cfg, url=args.database_url, cluster_dir=args.dir)
    with connect(url) as conn:
        applied = migrate(conn)
        try:
            # A config without lines (a central API's) has no plant to sync: no edge of its own
            report = sync_plant(conn, cfg) if cfg.lines else None
        except OwnershipConflict as exc:
            print(f"{args.config}: plant model not synced: {exc}", file=sys.stderr)
            return 1
    names = ", ".join(f"{m.version:03d}_{m.name}" for m in applied) or "none (up to date)"
    print(f"migrations applied: {names}")
    if report is None:
        print("plant model: none declared (a config for `shopfloor serve`), not synced")
        return 0
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


def _since(text: str) -> dt.datetime:
    """`--since`: ISO 8601 with a zone (a naive time would mean another instant on each PC)."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-03-01T06:00:00+01:00"
        ) from None
    if t.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone: add one, e.g. {t.isoformat()}Z (UTC) or "
            f"{t.isoformat()}+01:00"
        )
    return t


MAX_ROLLUP_CONNECTIONS = 16


def _connections(text: str) -> int:
    """`--connections`: a whole number from 1 to MAX_ROLLUP_CONNECTIONS."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_ROLLUP_CONNECTIONS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a whole number from 1 to {MAX_ROLLUP_CONNECTIONS}"
        )
    return n


def _cmd_rollups(args: argparse.Namespace) -> int:
    """Refresh or rebuild the rollups from the database alone: no source is dialled, and a
    collector may run meanwhile (per-machine locks: storage.rollup_basis)."""
    import asyncio

    import psycopg

    from storage.rollup_basis import Rebuild
    from storage.rollups import RollupsFailed

    name = f"shopfloor rollups {args.action}"
    ready = _schema_ready(args, name)
    if isinstance(ready, int):
        return ready
    cfg, url = ready
    machines = list(cfg.machines())
    unknown = sorted(set(args.machine or ()) - set(machines))
    if unknown:
        print(f"{name}: no machine {', '.join(unknown)} in {args.config}", file=sys.stderr)
        return 2
    since = getattr(args, "since", None)
    if since is not None and since > dt.datetime.now(dt.UTC):
        print(f"{name}: --since {since.isoformat()} is in the future", file=sys.stderr)
        return 2
    only = list(dict.fromkeys(args.machine)) if args.machine else machines
    rebuild = Rebuild(since) if args.action == "rebuild" else None
    started = time.monotonic()
    try:
        with _rollup_progress(sys.stderr):
            report = asyncio.run(_refresh_rollups(url, cfg, only, rebuild, args.connections))
    except RollupsFailed as exc:
        print(f"{name}: failed for {len(exc.failed)} machine(s):", file=sys.stderr)
        for machine, error in exc.failed.items():
            print(f"  {machine}: {error}", file=sys.stderr)
        return 1
    except (psycopg.OperationalError, OSError) as exc:
        print(f"{name}: the database went away: {exc}; what was done is kept", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted; what is left is done by the next refresh", file=sys.stderr)
        return 130
    starts = [start for start, _ in report.ranges.values()]
    print(
        f"rollups {args.action}: {len(report.ranges)} of {len(only)} machine(s) recomputed, "
        f"{report.minutes:,} minute(s)"
        + (f" from {_utc(min(starts))}" if starts else "")
        + f", {time.monotonic() - started:.1f} s"
    )
    return 0


def _schema_ready(args: argparse.Namespace, name: str) -> tuple[ShopfloorConfig, str] | int:
    """The config and database URL of a job on the database alone, or the exit code after a
    message: the config is wrong, the database does not answer, or its schema is behind."""
    from config import ConfigError, load_config
    from localenv.cluster import ClusterError
    from localenv.database import connect, resolve_database_url
    from storage.migrate import available_migrations, schema_version

    try:
        cfg = load_config(args.config)
        url = resolve_database_url(cfg, url=args.database_url, cluster_dir=args.db_dir)
        with connect(url) as conn:  # unreachable: a message naming the server
            version = schema_version(conn)
    except (ConfigError, ClusterError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    needed = len(available_migrations())
    if version < needed:
        print(
            f"{name}: the database schema is at version {version}, this shopfloor needs "
            f"{needed}: run `shopfloor db migrate --config {args.config}` (or start the collector)",
            file=sys.stderr,
        )
        return 1
    return cfg, url


def _cmd_maintain(args: argparse.Namespace) -> int:
    """Retention now, for a plant whose collectors should not run it (a central database's
    timer job): waits for a run another process holds, never runs beside it."""
    import asyncio

    import psycopg

    from storage import retention

    ready = _schema_ready(args, "shopfloor maintain")
    if isinstance(ready, int):
        return ready
    cfg, url = ready

    async def run() -> retention.Run:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            now = dt.datetime.now(dt.UTC)
            return await retention.elected(
                conn, cfg.settings.retention, edge=cfg.settings.edge, now=now, wait=True
            )

    try:
        report = asyncio.run(run()).report
    except (psycopg.OperationalError, OSError) as exc:
        print(f"shopfloor maintain: the database went away: {exc}", file=sys.stderr)
        return 1
    assert report is not None  # wait=True always runs
    dropped = {table: len(chunks) for table, chunks in report.dropped_chunks.items()}
    print(
        "retention: "
        + (", ".join(f"{n} chunk(s) of {t}" for t, n in dropped.items() if n) or "nothing old")
        + f" dropped, {report.rejected_deleted} rejected reading(s) deleted"
    )
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    """An edge that will not sync again lets go of its lines (docs/scale.md)."""
    from localenv.cluster import ClusterError
    from localenv.database import connect
    from storage.ownership import UnknownEdge, release

    try:
        with connect(args.database_url) as conn:
            released = release(conn, args.edge)
    except (ClusterError, UnknownEdge) as exc:
        print(f"shopfloor db release: {exc}", file=sys.stderr)
        return 1
    print(
        f"edge {args.edge!r} released: {len(released.lines)} line(s) "
        f"({', '.join(released.lines) or 'none active'}), {released.machines} machine(s) "
        "inactive until another edge declares them"
    )
    return 0


async def _refresh_rollups(
    url: str, cfg: ShopfloorConfig, only: list[str], rebuild: Rebuild | None, connections: int
) -> RefreshReport:
    import contextlib

    import psycopg

    from storage import rollups

    async with contextlib.AsyncExitStack() as stack:
        conns = [
            await stack.enter_async_context(
                await psycopg.AsyncConnection.connect(url, autocommit=True)
            )
            for _ in range(max(1, min(connections, len(only))))  # no more than machines
        ]
        now = dt.datetime.now(dt.UTC)
        return await rollups.refresh(
            conns[0], cfg, now=now, more=conns[1:], only=only, rebuild=rebuild, wait=True
        )


def _utc(t: dt.datetime) -> str:
    return f"{t.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


class _ChunkProgress(logging.Filter):
    """The refresh's INFO record per chunk of a catch-up (storage.rollups._refresh_machine's
    "… catching up to %s": machine, chunk start, chunk end, minutes, end) shown as one progress
    line: machine, range, minutes done / to do. Other records pass at the level asked for (-v);
    one this cannot read is shown as it is."""

    def __init__(self, out: TextIO, level: int) -> None:
        super().__init__()
        self.out, self.level = out, level
        self.tty = out.isatty()
        self.done: dict[str, tuple[dt.datetime, int]] = {}  # machine -> (range start, minutes)
        self.open = False  # a TTY line waits for its newline

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5 and "catching up" in str(record.msg)):
            return record.levelno >= self.level
        machine, chunk_start, _, minutes, until = (str(a) for a in args)
        try:
            start, done = self.done.get(machine, (dt.datetime.fromisoformat(chunk_start), 0))
            done += int(minutes)
            end = dt.datetime.fromisoformat(until)
        except ValueError:
            return True
        self.done[machine] = (start, done)
        todo = int((end - start).total_seconds() // 60)
        line = f"{machine}: {_utc(start)} .. {_utc(end)}: {done:,} / {todo:,} minutes"
        if self.tty:
            self.out.write(f"\r\x1b[K{line}")
            self.open = done < todo
            if not self.open:
                self.out.write("\n")
        else:
            self.out.write(line + "\n")
        self.out.flush()
        return False

    def close(self) -> None:
        if self.open:
            self.out.write("\n")


@contextlib.contextmanager
def _rollup_progress(out: TextIO) -> Iterator[None]:
    """While the block runs: catch-up progress lines on `out`; the INFO line of a machine the
    collector is refreshing (storage.rollup_basis: waiting) shown whatever the -v level."""
    chunks, waits = logging.getLogger("storage.rollups"), logging.getLogger("storage.rollup_basis")
    saved = chunks.level, waits.level
    progress = _ChunkProgress(out, logging.getLogger().getEffectiveLevel())
    chunks.addFilter(progress)
    chunks.setLevel(min(chunks.getEffectiveLevel(), logging.INFO))
    waits.setLevel(min(waits.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        progress.close()
        chunks.removeFilter(progress)
        chunks.setLevel(saved[0])
        waits.setLevel(saved[1])


def _delegate(
    module: str, entry: str = "run", options: str = "configure_parser"
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """A verb implemented by another module's `configure_parser` (or `options`) and `run` (or
    `entry`)."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), entry)(args)

    def configure(parser: argparse.ArgumentParser) -> None:
        try:
            getattr(importlib.import_module(module), options)(parser)
        except ImportError as exc:  # keep the other verbs usable
            parser.set_defaults(_unavailable=f"{module}: {exc}")

    return configure, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopfloor", description="Shop-floor data: PLCs to TimescaleDB, KPIs over HTTP."
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output (-v debug and the libraries' warnings, -vv everything)",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    check = verbs.add_parser("check", help="validate a config file and list every problem")
    check.add_argument("config", type=Path)
    check.add_argument(
        "--database-url",
        help="also check against this database who owns the lines (default: "
        "settings.database.url, if set)",
    )
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

    release = db_verbs.add_parser(
        "release", help="an edge that will not sync again lets go of its lines (a replaced PC)"
    )
    release.add_argument("edge", help="the edge's name (its settings.edge)")
    release.add_argument("--database-url", required=True)
    release.set_defaults(func=_cmd_release)

    maintain = verbs.add_parser(
        "maintain", help="run retention now, once for the whole database (waits for a running one)"
    )
    maintain.add_argument("--config", type=Path, required=True, help="the settings to apply")
    maintain.add_argument("--database-url", help="overrides settings.database.url")
    maintain.add_argument("--db-dir", type=Path, help="private database directory, if no URL")
    maintain.set_defaults(func=_cmd_maintain)

    rollups = verbs.add_parser(
        "rollups", help="bring the minute/hour rollups up to date, or rebuild them (no PLC dialled)"
    )
    rollup_verbs = rollups.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in [
        ("refresh", "what the collector's periodic job does, once, now"),
        ("rebuild", "recompute from --since (default: the first reading kept) to now"),
    ]:
        p = rollup_verbs.add_parser(action, help=text)
        p.add_argument("--config", type=Path, required=True, help="the plant's YAML file")
        p.add_argument("--database-url", help="overrides settings.database.url")
        p.add_argument("--db-dir", type=Path, help="private database directory, if no URL is set")
        p.add_argument("--machine", action="append", metavar="ID", help="only this (repeatable)")
        p.add_argument(
            "--connections",
            type=_connections,
            default=1,
            metavar="N",
            help="database connections sharing the machines, one machine each at a time "
            f"(1 to {MAX_ROLLUP_CONNECTIONS}, default 1; 2 or more speed a catch-up on 2 cores)",
        )
        if action == "rebuild":
            p.add_argument(
                "--since",
                type=_since,
                metavar="T",
                help="ISO 8601 with a zone, e.g. 2026-03-01T06:00:00+01:00",
            )
        p.set_defaults(func=_cmd_rollups)

    for verb, module, entry, text in [
        ("demo", "collector.demo", "run", "the demo line, all local: Ctrl-C stops everything"),
        ("run", "collector.runner", "run", "collect from the sources and serve the HTTP API"),
        ("collect", "collector.runner", "run_collect", "collect only (no HTTP API)"),
        ("serve", "collector.runner", "run_serve", "serve the HTTP API only"),
        ("simulate", "simulators.cli", "run", "run the bundled PLC simulators a config describes"),
        ("browse", "adapters.opcua.browse_cli", "run", "list an OPC UA server's variables"),
        ("listen", "adapters.mqtt.listen_cli", "run", "list MQTT topics and JSON fields"),
    ]:
        # `run` and `serve` also take --host and --port for the API
        options = "configure_api_parser" if verb in ("run", "serve") else "configure_parser"
        configure, run = _delegate(module, entry, options)
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
