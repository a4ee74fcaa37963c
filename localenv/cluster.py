"""A private local PostgreSQL + TimescaleDB cluster (`shopfloor db up|down|status`).

initdb and postgres refuse to run as root; as root we run them as the `postgres` system user on
a data directory it owns, so the same code serves a developer, CI (root) and the edge PC service.
The superuser password is generated at init and kept in `<base>/password` (mode 600).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)
DEFAULT_PORT = 54329
SUPERUSER = "shopfloor"
DATABASE = "shopfloor"


class ClusterError(RuntimeError):
    """The local cluster cannot be set up or started; the message says what to do."""


def default_base_dir() -> Path:
    """Default home of the private cluster: the user's data dir, or /var/lib for root."""
    if os.geteuid() == 0:
        return Path("/var/lib/shopfloor/db")
    return Path(platformdirs.user_data_dir("shopfloor")) / "db"


def pg_bin_dir() -> Path:
    env = os.environ.get("SHOPFLOOR_PG_BIN")
    for candidate in ([env] if env else []) + list(PG_BIN_CANDIDATES):
        if candidate and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    raise ClusterError(
        "PostgreSQL 15 server binaries not found: run scripts/setup, or set "
        "SHOPFLOOR_PG_BIN to the directory holding pg_ctl"
    )


@dataclass
class LocalCluster:
    base: Path
    port: int = DEFAULT_PORT

    @classmethod
    def at(cls, base: Path | None = None, port: int | None = None) -> LocalCluster:
        """The cluster in `base` (default dir if None), on `port` or the port it was set up with."""
        base = base or default_base_dir()
        if port is None:
            port_file = base / "port"
            port = int(port_file.read_text()) if port_file.exists() else DEFAULT_PORT
        return cls(base=base, port=port)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def password_file(self) -> Path:
        return self.base / "password"

    @property
    def log_file(self) -> Path:
        return self.base / "postgres.log"

    @property
    def url(self) -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{DATABASE}"

    # -- running the binaries as the right user -----------------------------------------------

    def _run_as(self) -> str | None:
        """The system user to run postgres as when we are root."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ClusterError(
                "running as root needs a 'postgres' system user (Debian's "
                "postgresql package creates it)"
            ) from exc
        return "postgres"

    def _cmd(self, *args: str) -> list[str]:
        user = self._run_as()
        return ["runuser", "-u", user, "--", *args] if user else list(args)

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self._cmd(str(pg_bin_dir() / tool), *args), capture_output=True, text=True, cwd="/"
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"{tool} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        return proc

    # -- lifecycle ----------------------------------------------------------------------------

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb with TimescaleDB preloaded and loopback-only, password-protected access."""
        user = self._run_as()
        self.base.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self.password_file.chmod(0o600)
        pwfile = self.base / ".initdb-pw"
        pwfile.write_text(self.password_file.read_text())
        if user:
            entry = pwd.getpwnam(user)
            # The postgres user must reach the data dir: traverse every parent, own the rest.
            for parent in [self.base, *self.base.parents]:
                if parent.stat().st_mode & 0o001 == 0:
                    raise ClusterError(
                        f"{parent} is not traversable by the postgres user; "
                        "choose a data directory outside it (--dir)"
                    )
            for path in (self.data_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            os.chmod(self.base, 0o755)
        try:
            self._pg(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "-E",
                "UTF8",
                "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                "\n# shopfloor\nshared_preload_libraries = 'timescaledb'\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.data_dir}'\n"
                "timescaledb.telemetry_level = off\n"
                "max_connections = 100\nshared_buffers = 256MB\nwork_mem = 32MB\n"
                "synchronous_commit = on\nlog_min_messages = warning\n"
            )

    def running(self) -> bool:
        if not self.initialized():
            return False
        return self._pg("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self) -> None:
        if not self.initialized():
            self.init()
        if self.running():
            return
        (self.base / "port").write_text(f"{self.port}\n")
        if self._run_as():
            self.log_file.touch()
            entry = pwd.getpwnam("postgres")
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        self._pg(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            f"-p {self.port}",
        )
        self._create_database()

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._pg("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data_dir))

    def _create_database(self) -> None:
        import psycopg

        admin = self.url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')


def world_traversable_tempdir(prefix: str) -> Path:
    """A temp dir the postgres system user can reach when we run as root (tests, benchmarks)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def _has_c_utf8() -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout
    return any(name.lower() in ("c.utf8", "c.utf-8") for name in out.split())
