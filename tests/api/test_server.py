"""`api.server.serve` over a real socket: loopback only without keys, the host with keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.server import ApiStartError, listen, serve
from config import ShopfloorConfig
from config.settings import ApiSettings
from tests.api.plant import KEY, plant
from tests.services import eventually, free_port

PROC_NET = Path("/proc/net/tcp").exists()


def listening(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port` (Linux /proc/net/tcp{,6})."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(addr)
    return found


@contextlib.asynccontextmanager
async def running(cfg: ShopfloorConfig, url: str, settings: ApiSettings) -> AsyncIterator[None]:
    ready = asyncio.Event()
    app = create_app(cfg, database_url=url)
    task = asyncio.create_task(serve(app, settings, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.skipif(not PROC_NET, reason="needs Linux /proc/net/tcp to see the bound address")
async def test_without_keys_binds_loopback_only_and_warns(
    loaded_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    caplog.set_level(logging.WARNING, logger="api.server")
    async with running(plant(), loaded_url, ApiSettings(host="0.0.0.0", port=port)):
        assert listening(port) == {"0100007F"}  # 127.0.0.1, not 0.0.0.0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            r = await c.get(
                "/api/v1/lines/ld/kpis",
                params={"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T14:00:00Z"},
            )
    assert r.status_code == 200, r.text
    assert r.json()["kpis"]["oee"] == pytest.approx(0.802083, abs=1e-6)
    assert listening(port) == set()  # cancelled: the socket is closed
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert any("no api_keys" in w and "127.0.0.1 only" in w and "0.0.0.0" in w for w in warnings)


@pytest.mark.skipif(not PROC_NET, reason="needs Linux /proc/net/tcp to see the bound address")
@pytest.mark.parametrize(("host", "bound"), [("localhost", "0100007F"), ("127.0.0.2", "0200007F")])
async def test_without_keys_a_loopback_host_is_used_as_configured(
    loaded_url: str, caplog: pytest.LogCaptureFixture, host: str, bound: str
) -> None:
    port = free_port()
    caplog.set_level(logging.INFO, logger="api.server")
    async with running(plant(), loaded_url, ApiSettings(host=host, port=port)):
        assert listening(port) == {bound}
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "api.server"]
    assert said and all(level == logging.INFO for level, _ in said), said  # no host warning
    assert any(f"API listening on http://{host}:{port}" in text for _, text in said), said


async def test_with_keys_binds_the_host_and_checks_tokens(
    loaded_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    caplog.set_level(logging.WARNING, logger="api.server")
    settings = ApiSettings(host="127.0.0.1", port=port, api_keys=[KEY])
    async with (
        running(plant(keys=[KEY]), loaded_url, settings),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c,
    ):
        denied = await c.get("/api/v1/lines")
        allowed = await c.get("/api/v1/lines", headers={"Authorization": f"Bearer {KEY}"})
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 200
    assert not [r for r in caplog.records if "no api_keys" in r.getMessage()]


async def test_a_taken_port_is_a_clear_error(loaded_url: str) -> None:
    port = free_port()
    async with running(plant(), loaded_url, ApiSettings(port=port)):
        with pytest.raises(ApiStartError, match=f"127.0.0.1:{port}"):
            await serve(create_app(plant(), database_url=loaded_url), ApiSettings(port=port))


async def test_answers_are_sent_without_waiting_for_the_clients_ack() -> None:
    """Nagle off (TCP_NODELAY) on the API's connections: with it on, every answer on a
    kept-alive connection waited ~40 ms for the client's delayed ACK (found by bench/central:
    /healthz took 44 ms instead of 1). asyncio turns it off for accepted sockets of a TCP
    listener, as uvicorn serves ours (api.server.listen)."""
    sock = listen("127.0.0.1", free_port())
    seen: list[int] = []

    async def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("socket")
        seen.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        await eventually(lambda: bool(seen), 10, "the connection accepted")
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen == [1]
