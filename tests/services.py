"""Helpers for tests that use real services (the broker itself lives in collector.mosquitto).

Nothing is mocked and nothing is written outside temp dirs; every process started is stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from collector.mosquitto import Mosquitto, free_port, wait_port
from storage.cluster import world_traversable_tempdir

__all__ = ["Mosquitto", "free_port", "run_shopfloor", "wait_port", "world_traversable_tempdir"]


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
