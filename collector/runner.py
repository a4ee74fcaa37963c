"""`shopfloor run | collect | serve --config F`: the collector and the HTTP API, together or apart.

`run` and `serve` take `--host` and `--port` over `settings.api.host/port` (and over
SHOPFLOOR_API_HOST/PORT); an API that cannot listen there is a message and exit 1.
SIGTERM or Ctrl-C stops the adapters, stores what is queued (database or spool) and exits 0,
within `collector.service.SHUTDOWN_S`. A task the collector cannot run without (the pipeline's
writer) failing stops it the same way, and the process exits 70.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from collector.spool import SpoolError
from collector.supervisor import CollectorFailed
from config import ConfigError, ShopfloorConfig, check_config
from config.bounds import Port
from config.loader import Check
from localenv.cluster import ClusterError
from localenv.database import resolve_database_url

log = logging.getLogger(__name__)

EXIT_FAILED = 70  # EX_SOFTWARE: a task failed unexpectedly; a service manager restarts us


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="the plant's YAML file")
    parser.add_argument("--database-url", help="overrides settings.database.url")
    parser.add_argument("--db-dir", type=Path, help="private database directory, if no URL is set")
    parser.add_argument("--spool-dir", type=Path, help="overrides settings.collector.spool_dir")


def configure_api_parser(parser: argparse.ArgumentParser) -> None:
    """`run` and `serve`: the options above, and where the API listens."""
    configure_parser(parser)
    parser.add_argument(
        "--host",
        type=api_host,
        help="overrides settings.api.host (used only with api_keys: without, 127.0.0.1)",
    )
    parser.add_argument("--port", type=api_port, help="overrides settings.api.port (default 8080)")


def api_port(text: str) -> int:
    """`--port`: an integer in settings.api.port's range, with the config's message."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(Port).validate_python(text.strip())
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["type"] == "out_of_range":
            raise argparse.ArgumentTypeError(error["msg"]) from None
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number: a whole number from 1 to 65535"
        ) from None


def api_host(text: str) -> str:
    """`--host`: not empty (any name uvicorn can bind; a wrong one fails at start, named)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: an IP address or a host name, e.g. 0.0.0.0")
    return text.strip()


def with_api(cfg: ShopfloorConfig, *, host: str | None, port: int | None) -> ShopfloorConfig:
    """`cfg` with the API's host and port replaced by those given (None: as configured)."""
    update: dict[str, object] = {"host": host, "port": port}
    update = {key: value for key, value in update.items() if value is not None}
    if not update:
        return cfg
    api = cfg.settings.api.model_copy(update=update)
    return cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"api": api})})


def api_port_taken(cfg: ShopfloorConfig) -> bool:
    """Whether another process listens where `cfg`'s API would (checked by binding there)."""
    from api.server import PortInUse, bind_host, listen

    try:
        listen(bind_host(cfg.settings.api), cfg.settings.api.port).close()
    except PortInUse:
        return True
    return False


def api_failure(exc: BaseException) -> str | None:
    """What to tell the user when the API could not start; None when `exc` is no such failure."""
    from api.server import ApiStartError, PortInUse

    if isinstance(exc, PortInUse):
        return f"{exc}: choose another port with --port (or settings.api.port)"
    if isinstance(exc, ApiStartError):
        return str(exc)
    return None


async def run_services(
    cfg: ShopfloorConfig,
    url: str,
    *,
    collect: bool,
    serve: bool,
    spool_dir: Path | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Collector and/or API in this event loop until `stop` is set."""
    stop = stop or asyncio.Event()
    collector = None
    tasks: list[asyncio.Task[None]] = []
    if collect:
        from collector.service import Collector

        collector = Collector(cfg, url, spool_dir=spool_dir)
        collector_ready = asyncio.Event()
        tasks.append(asyncio.create_task(collector.run(collector_ready), name="collector"))
        await collector_ready.wait()
    if serve:
        from api.app import create_app
        from api.server import serve as serve_api

        app = create_app(cfg, database_url=url, health=collector)
        api_ready = asyncio.Event()
        tasks.append(asyncio.create_task(serve_api(app, cfg.settings.api, ready=api_ready)))
        await until(api_ready, tasks)
    if ready is not None:
        ready.set()
    await until(stop, tasks)
    if serve:
        tasks[-1].cancel()  # the API first: no requests while the collector winds down
    if collector is not None:
        collector.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def until(event: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for `event`, or for a service to end first (its exception is raised)."""
    waiter = asyncio.ensure_future(event.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    for task in done:
        if task is not waiter and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (a graceful shutdown) while the block runs."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


# The collector allocates ~100k short-lived tuples a second (readings, rows), none of them in
# reference cycles; with the default first threshold (700) the cyclic collector ran hundreds of
# times a second over them and the config's objects (figures: docs/e2e.md).
GC_THRESHOLDS = (100_000, 50, 100)


def settle_garbage_collector() -> None:
    """After start-up: what is loaded now (imports, the config) lives as long as the process, so
    full collections need not walk it again; then collect young objects in big steps."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _main(args: argparse.Namespace, *, collect: bool, serve: bool) -> int:
    try:
        notes: list[str] = []

        def url_of(cfg: ShopfloorConfig) -> str:
            return resolve_database_url(cfg, url=args.database_url, cluster_dir=args.db_dir)

        checks = [ownership_check(url_of, notes)] if collect else []
        cfg = check_config(args.config, checks=checks).config
        for note in notes:
            log.debug("%s", note)
        if serve:
            cfg = with_api(cfg, host=args.host, port=args.port)
        url = resolve_database_url(cfg, url=args.database_url, cluster_dir=args.db_dir)
    except (ConfigError, ClusterError) as exc:
        print(exc, file=sys.stderr)
        return 1
    if collect and not cfg.lines:
        print(
            f"{args.config}: declares no lines, so there is nothing to collect (a config "
            "without lines is for `shopfloor serve` over a central database)",
            file=sys.stderr,
        )
        return 1
    for path, message in cfg.security_warnings():
        log.warning("%s: %s", path, message)
    settle_garbage_collector()

    async def main() -> None:
        stop = asyncio.Event()
        with stop_on_signals(stop):
            await run_services(
                cfg, url, collect=collect, serve=serve, spool_dir=args.spool_dir, stop=stop
            )

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except CollectorFailed as exc:
        log.critical("exiting: %s", exc)
        return EXIT_FAILED
    except SpoolError as exc:
        print(f"shopfloor {args.verb}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        failure = api_failure(exc) if serve else None
        if failure is None:
            raise
        print(f"shopfloor {args.verb}: {failure}", file=sys.stderr)
        return 1
    return 0


def ownership_check(url_of: Callable[[ShopfloorConfig], str | None], notes: list[str]) -> Check:
    """A config check: what the config declares that another edge owns in the database `url_of`
    names (None: no database to ask). One that cannot be asked now is no problem (a collector
    spools, and its plant sync checks again); `notes` says whether it was asked."""

    def check(cfg: ShopfloorConfig) -> list[tuple[str, str]]:
        from storage.ownership import NotChecked, check_against

        try:
            url = url_of(cfg)
            if url is None:
                return []
            found = check_against(url, cfg)
        except (NotChecked, ClusterError) as exc:
            notes.append(f"note: ownership not checked against the database: {exc}")
            return []
        notes.append(f"checked against the database: edge {cfg.settings.edge!r} owns it all")
        return [(c.path, c.message) for c in found]

    return check


def run(args: argparse.Namespace) -> int:
    return _main(args, collect=True, serve=True)


def run_collect(args: argparse.Namespace) -> int:
    return _main(args, collect=True, serve=False)


def run_serve(args: argparse.Namespace) -> int:
    return _main(args, collect=False, serve=True)
