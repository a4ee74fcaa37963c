"""The `shopfloor` command run in its own process, as a user runs it (tests of CLI verbs)."""

from __future__ import annotations

import asyncio
import sys


async def shopfloor(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `shopfloor ARGS`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
