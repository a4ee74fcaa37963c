"""Runs the API with uvicorn inside the caller's event loop until cancelled.

Rule: without API keys the API has no authentication, so it binds to this machine only: the
configured `host` when that is a loopback one (localhost, 127.0.0.0/8, ::1), else 127.0.0.1, and a
WARNING says so. With keys it binds to `settings.host`.

The listening socket is bound before the app starts, so a port in use is a `PortInUse` that
names the address, before any database connection is opened.

The caller owns the process's signals (`shopfloor run` stops the collector and the API together),
so uvicorn's own SIGINT/SIGTERM handlers are not installed: cancel `serve()` to stop it; the
server then finishes open requests and runs the app's lifespan shutdown (closing the pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from config.net import is_loopback
from config.settings import ApiSettings

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class ApiStartError(RuntimeError):
    """The server could not start: it cannot listen there, or the app's startup failed (the
    log says why)."""


class PortInUse(ApiStartError):
    """Another process listens on the address: another port, or stop that process."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the caller owns signals and cancels serve()


def bind_host(settings: ApiSettings) -> str:
    """Where to listen: the configured host when API keys protect the API or when it is this
    machine itself (localhost, 127.0.0.0/8, ::1), else 127.0.0.1."""
    return settings.host if settings.api_keys or is_loopback(settings.host) else LOOPBACK


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, as uvicorn binds one (SO_REUSEADDR, IPv6 for a host with a
    colon); not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said, not 0: asyncio turns Nagle off (TCP_NODELAY) only on accepted sockets
    # whose protocol says TCP, and with Nagle on every answer on a kept-alive connection
    # waited ~40 ms for the client's delayed ACK (docs/benchmarks.md, bench/central).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"{where} is in use by another process") from None
        raise ApiStartError(f"the API cannot listen on {where}: {exc.strerror or exc}") from None
    return sock


async def _run(server: uvicorn.Server, sock: socket.socket, where: str) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit:  # uvicorn's answer to a failed lifespan startup
        raise ApiStartError(f"the API could not start on {where} (the log says why)") from None


async def serve(app: FastAPI, settings: ApiSettings, *, ready: asyncio.Event | None = None) -> None:
    """Serve `app` until cancelled; `ready` is set once the socket is listening."""
    host = bind_host(settings)
    if host != settings.host:
        log.warning(
            "no api_keys configured: the API is unauthenticated and listens on %s only, not on "
            "the configured host %r; set settings.api.api_keys to serve the network",
            LOOPBACK,
            settings.host,
        )
    elif not settings.api_keys:
        log.info("no api_keys configured: the API is unauthenticated (loopback only)")
    where = f"{host}:{settings.port}"
    sock = listen(host, settings.port)
    config = uvicorn.Config(
        app,
        host=host,
        port=settings.port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    server = _Server(config)
    task = asyncio.create_task(_run(server, sock, where), name=f"api {where}")
    try:
        while not server.started and not task.done():
            await asyncio.wait({task}, timeout=0.02)
        if server.started:
            log.info("API listening on http://%s", where)
            if ready is not None:
                ready.set()
        await asyncio.wait({task})  # unlike `await task`, cancelling us does not cancel it
    except asyncio.CancelledError:
        server.should_exit = True
        await asyncio.wait({task})
        raise
    finally:
        sock.close()  # uvicorn closes it once serving; not when the app's startup failed
    task.result()  # re-raise what ended the server (ApiStartError), if anything
