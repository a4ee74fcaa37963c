"""Where the API listens, as a user sets it: `shopfloor run/serve --host/--port`, `demo --port`.

`shopfloor demo --port` serving there is in test_demo.py (one demo run serves both tests).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from collector.demo import _api_port
from config import load_config
from tests.services import free_port, run_shopfloor, wait_port

DEMO_CONFIG = str(Path(__file__).parents[2] / "config" / "demo.yaml")
EXE = str(Path(sys.executable).parent / "shopfloor")


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port another process (here: this one) listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_serve_answers_on_the_port_given_and_says_nothing_of_the_default_host(
    database_url: str,
) -> None:
    port = free_port()
    with taken_port() as env_port:  # --port wins over SHOPFLOOR_API_PORT (else: in use)
        proc = subprocess.Popen(
            [
                *(EXE, "serve", "--config", DEMO_CONFIG, "--database-url", database_url),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "SHOPFLOOR_API_PORT": str(env_port)},
        )
        try:
            wait_port(port, timeout=30)
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert health.status_code == 200, health.text
    assert health.json()["database"]["connected"] is True
    # 127.0.0.1 is used as configured: no warning about the host, the start's INFO line only
    assert "level=warning logger=api.server" not in err, err
    assert f'level=info logger=api.server msg="API listening on http://127.0.0.1:{port}"' in err
    assert "not used" not in err and "configured host" not in err, err


def test_a_host_that_is_not_used_is_named_and_a_taken_port_is_a_message(
    database_url: str,
) -> None:
    with taken_port() as port:
        done = run_shopfloor(
            "serve",
            *("--config", DEMO_CONFIG, "--database-url", database_url),
            *("--host", "0.0.0.0", "--port", str(port)),
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    warning = next(line for line in done.stderr.splitlines() if "logger=api.server" in line)
    assert "level=warning" in warning
    assert "listens on 127.0.0.1 only, not on the configured host '0.0.0.0'" in warning
    assert f"shopfloor serve: 127.0.0.1:{port} is in use" in done.stderr
    assert "--port" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("verb", "port", "expected"),
    [
        ("serve", "0", "0 is out of range: must be at least 1 and at most 65535"),
        ("run", "65536", "65536 is out of range: must be at least 1 and at most 65535"),
        ("run", "http", "'http' is not a port number"),
        ("demo", "-5", "-5 is out of range"),
    ],
)
def test_a_bad_port_exits_2_naming_the_option(verb: str, port: str, expected: str) -> None:
    done = run_shopfloor(verb, "--config", DEMO_CONFIG, f"--port={port}", timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"shopfloor {verb}: error: argument --port: {expected}" in done.stderr


def test_collect_has_no_api_options() -> None:
    done = run_shopfloor("collect", "--config", DEMO_CONFIG, "--port", "8081", timeout=60)
    assert done.returncode == 2
    assert "unrecognized arguments: --port 8081" in done.stderr


def test_demo_on_a_taken_port_says_so_before_starting_anything(tmp_path: Path) -> None:
    with taken_port() as port:
        done = run_shopfloor("demo", "--db-dir", str(tmp_path / "db"), "--port", str(port))
    assert done.returncode == 1, done.stderr
    assert f"shopfloor demo: port {port} on 127.0.0.1 is in use" in done.stderr
    assert "--port" in done.stderr
    assert done.stdout == ""  # no database, broker or simulator was started
    assert not (tmp_path / "db").exists()


def test_demo_without_port_moves_off_a_taken_default_and_says_so() -> None:
    with taken_port() as port:
        cfg = load_config(DEMO_CONFIG, env={"SHOPFLOOR_API_PORT": str(port)})
        assert cfg.settings.api.port == port
        moved, note = _api_port(cfg, None)
        assert moved is not None
        assert moved.settings.api.port != port
        assert f"port {port} is in use; --port N chooses one" in note
        with socket.create_server(("127.0.0.1", moved.settings.api.port)):
            pass  # the port chosen instead is free
    free = free_port()
    cfg = load_config(DEMO_CONFIG, env={"SHOPFLOOR_API_PORT": str(free)})
    kept, note = _api_port(cfg, None)
    assert kept is not None and kept.settings.api.port == free and note == ""
