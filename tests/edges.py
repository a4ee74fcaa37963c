"""One plant split between edges: each edge's config declares some of its lines, with their
machines' tags and the plant's calendars and stop reasons (what several collectors on one
central database each hold)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from config import ShopfloorConfig


def edge_config(cfg: ShopfloorConfig, edge: str, lines: Collection[str]) -> ShopfloorConfig:
    """`cfg` as edge `edge` declaring only `lines` (and the tags of their machines)."""
    kept = [line for line in cfg.lines if line.id in lines]
    machines = {m.id for line in kept for m in line.machines}
    sources = [
        s.model_copy(update={"tags": [t for t in s.tags if t.machine in machines]})
        for s in cfg.sources
    ]
    settings = cfg.settings.model_copy(update={"edge": edge})
    return cfg.model_copy(update={"lines": kept, "sources": sources, "settings": settings})


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of `path` that is `text` (stripped): where `check`
    should point."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.strip() == text)
