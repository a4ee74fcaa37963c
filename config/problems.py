"""What is wrong with a config file, and where: key path and line.

`ConfigError` is the only exception `load_config` and `parse_config` raise for a bad file,
whatever the bytes in it; each `Problem` names the key path (`lines[0].machines[2].ideal_cycle_s`,
or "" for the file as a whole) and, where the file shows it, the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PathPart = str | int
LineMap = Mapping[tuple[PathPart, ...], int]


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}" if self.path else "(top level)"
        at = f" (line {self.line})" if self.line else ""
        return f"{where}{at}: {self.message}"


class ConfigError(Exception):
    """The config file has problems; `problems` lists each one with its key path and line."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{filename}: {len(problems)} problem(s)\n{lines}")


def format_path(parts: tuple[PathPart, ...] | list[PathPart]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(path: str, lines: LineMap) -> int | None:
    """Line of a formatted key path, or of its nearest ancestor that is in the file."""
    parts: list[PathPart] = [
        int(p[1:-1]) if p.startswith("[") else p.lstrip(".")
        for p in re.findall(r"\[\d+\]|\.?[^.\[\]]+", path)
    ]
    for cut in range(len(parts), -1, -1):
        if tuple(parts[:cut]) in lines:
            return lines[tuple(parts[:cut])]
    return None


def located(pairs: list[tuple[str, str]], lines: LineMap) -> list[Problem]:
    """(key path, message) pairs, as the models report them, with their lines."""
    return [Problem(path, message, line_of(path, lines)) for path, message in pairs]
