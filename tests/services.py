"""Helpers for tests that use real services (the broker itself lives in localenv.mosquitto).

Nothing is mocked and nothing is written outside temp dirs; every process started is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.runner import run_services
from config import ShopfloorConfig
from localenv.cluster import LocalCluster, world_traversable_tempdir
from localenv.mosquitto import Mosquitto, free_port, wait_port

__all__ = [
    "Mosquitto",
    "eventually",
    "free_port",
    "run_shopfloor",
    "temporary_cluster",
    "wait_port",
    "world_traversable_tempdir",
]


@contextlib.contextmanager
def temporary_cluster(prefix: str) -> Iterator[LocalCluster]:
    """A started private TimescaleDB on a free loopback port in a temp dir; removed after."""
    base = world_traversable_tempdir(prefix)
    cluster = LocalCluster(base=base / "db", port=free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


def run_shopfloor(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed `shopfloor` console script as a user would."""
    exe = Path(sys.executable).parent / "shopfloor"  # the venv the tests run in
    cmd = [str(exe)] if exe.exists() else [shutil.which("shopfloor") or "shopfloor"]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


async def eventually(
    check: Callable[[], bool],
    within: float = 15.0,
    what: str | Callable[[], str] = "",
    *,
    each: Callable[[], Awaitable[None] | None] | None = None,
    interval: float = 0.05,
) -> None:
    """Wait until `check()` holds. A hang guard, not a speed test: `within` is generous, and
    failing it means the awaited thing never happened. `what` (or its callable, evaluated only on
    failure) says what was awaited; `each` runs every round (checks, or a nudge like a publish)."""
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within:g} s: {what() if callable(what) else what}")
        if each is not None:
            result = each()
            if result is not None:
                await result
        await asyncio.sleep(interval)


_ids = itertools.count()


def unique(prefix: str) -> str:
    """Topic roots and client ids unique per test: the session broker is shared."""
    return f"{prefix}{next(_ids)}-{time.monotonic_ns() % 10**9}"


class Publisher:
    """A plain paho client in its own network thread; publish() waits for the broker's ack."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub"))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    async def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        await asyncio.to_thread(info.wait_for_publish, 5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.asynccontextmanager
async def services_running(
    live: ShopfloorConfig, database_url: str, spool_dir: Path, *, serve: bool = True
) -> AsyncIterator[None]:
    """The collector (and, with `serve`, the API) of `live` in this loop, ready, for the block;
    stopped after it, re-raising what made it fail."""
    stop, ready = asyncio.Event(), asyncio.Event()
    services = asyncio.create_task(
        run_services(
            live,
            database_url,
            collect=True,
            serve=serve,
            spool_dir=spool_dir,
            stop=stop,
            ready=ready,
        )
    )
    try:
        await eventually(lambda: ready.is_set() or services.done(), 30, "collector and API")
        if services.done():
            await services
        yield
    finally:
        stop.set()
        await services


class DatabaseLink:
    """A TCP proxy in front of the database, in a thread of its own (the test's blocking calls
    cannot stall it). `cut()` closes every connection through it and refuses new ones (accepted,
    then closed at once) until `restore()`: the WAN between one edge and the central database
    goes away, while the database itself stays up for everyone else. `stall()` keeps every
    connection open and forwards nothing, new ones included, until `restore()`: a link that
    drops packets."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        self.upstream = (parts.hostname, parts.port)
        self.port = free_port()
        self.url = urlunsplit(
            parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{self.port}"))
        )
        self._cut = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._streams: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="db-link", daemon=True)
        self.refused = 0

    def start(self) -> DatabaseLink:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def cut(self) -> None:
        self._cut.set()
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)

    def stall(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def restore(self) -> None:
        self._cut.clear()
        self._loop.call_soon_threadsafe(self._flowing.set)

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._close_all()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _close_all(self) -> None:
        for writer in list(self._streams):
            writer.close()
        self._streams.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._cut.is_set():
            self.refused += 1
            client_w.close()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        self._streams.update((client_w, server_w))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await r.read(65536):
                    await self._flowing.wait()
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
        self._streams.difference_update((client_w, server_w))


@contextlib.contextmanager
def database_link(url: str) -> Iterator[DatabaseLink]:
    link = DatabaseLink(url).start()
    try:
        yield link
    finally:
        link.stop()
