"""Runs the API with uvicorn inside the caller's event loop until cancelled.

Rule: without API keys the API has no authentication, so it binds to 127.0.0.1 only, whatever
`host` says, and says so in a WARNING. With keys it binds to `settings.host`.

The caller owns the process's signals (`shopfloor run` stops the collector and the API together),
so uvicorn's own SIGINT/SIGTERM handlers are not installed: cancel `serve()` to stop it; the
server then finishes open requests and runs the app's lifespan shutdown (closing the pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from config.settings import ApiSettings

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class ApiStartError(RuntimeError):
    """The server could not start: port taken, or the app's startup failed (see the log)."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the caller owns signals and cancels serve()


def bind_host(settings: ApiSettings) -> str:
    """Where to listen: the configured host only when API keys protect the API."""
    return settings.host if settings.api_keys else LOOPBACK


async def _run(server: uvicorn.Server, where: str) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn's answer to a failed bind or a failed lifespan startup
        raise ApiStartError(f"the API could not start on {where} (the log says why)") from None


async def serve(app: FastAPI, settings: ApiSettings, *, ready: asyncio.Event | None = None) -> None:
    """Serve `app` until cancelled; `ready` is set once the socket is listening."""
    host = bind_host(settings)
    if not settings.api_keys:
        log.warning(
            "no api_keys configured: the API is unauthenticated and listens on %s only "
            "(configured host %r not used); set settings.api.api_keys to serve the network",
            LOOPBACK,
            settings.host,
        )
    where = f"{host}:{settings.port}"
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
    task = asyncio.create_task(_run(server, where), name=f"api {where}")
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
    task.result()  # re-raise what ended the server (ApiStartError), if anything
