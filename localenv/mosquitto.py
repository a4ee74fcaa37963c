"""A private Mosquitto broker for `shopfloor demo` and the tests: free loopback port, config and
log in a work dir of ours, nothing written to system directories."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout`; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


@dataclass
class Mosquitto:
    """A mosquitto broker on a loopback port with a private config; optional TLS listener."""

    workdir: Path
    port: int = field(default_factory=free_port)
    tls_port: int | None = None
    tls_files: dict[str, Path] | None = None  # cafile, certfile, keyfile
    users: dict[str, str] | None = None  # user -> password; set: anonymous clients refused
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed: run scripts/setup")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        auth = ["allow_anonymous true"]
        if self.users:
            # Started as root, mosquitto reads this file as the `mosquitto` user: keep workdir
            # traversable (localenv.cluster.world_traversable_tempdir).
            passwd = self.workdir / "passwd"
            passwd.unlink(missing_ok=True)
            for user, password in self.users.items():
                flags = [] if passwd.exists() else ["-c"]
                subprocess.run(
                    ["mosquitto_passwd", "-b", *flags, str(passwd), user, password],
                    check=True,
                    capture_output=True,
                )
            passwd.chmod(0o644)
            auth = ["allow_anonymous false", f"password_file {passwd}"]
        lines = [
            "per_listener_settings false",
            *auth,
            "persistence false",
            "max_queued_messages 1000000",
            "max_inflight_messages 0",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.tls_files:
            self.tls_port = self.tls_port or free_port()
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.tls_files['cafile']}",
                f"certfile {self.tls_files['certfile']}",
                f"keyfile {self.tls_files['keyfile']}",
            ]
        conf.write_text("\n".join(lines) + "\n")
        log = (self.workdir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(
            [exe, "-c", str(conf)], stdout=log, stderr=log, start_new_session=True
        )
        wait_port(self.port)
        if self.tls_port:
            wait_port(self.tls_port)
        return self

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()
