"""docs/config.md states the loader's limits and the model's numeric bounds as they are."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from config.document import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from config.loader import MAX_PROBLEMS
from tests.config.bounds_table import Row, bounds_rows

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "config.md"


def _expand(key: str) -> list[str]:
    """`a.{b,c}.d` -> `a.b.d`, `a.c.d`: one table row for fields with one rule."""
    parts = re.split(r"\{([^}]*)\}", key)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def table_rows(text: str) -> list[Row]:
    section = text.split("## Numeric bounds", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            key, span, where = cells
            rows += [(k, span, where) for k in _expand(key.strip("`"))]
    return rows


def test_bounds_table_is_the_model() -> None:
    documented = table_rows(DOC.read_text())
    assert len(documented) == len(set(documented)), "a key is in the table twice"
    assert sorted(documented) == sorted(bounds_rows())


def test_limits_in_the_text_are_the_constants() -> None:
    text = DOC.read_text()
    assert f"larger than {MAX_FILE_BYTES // 2**20} MiB" in text
    assert f"{MAX_NODES:,} values" in text
    assert f"deeper than {MAX_DEPTH} levels" in text
    assert f"at most {MAX_PROBLEMS} problems" in text


def test_readme_links_the_page() -> None:
    readme = (ROOT / "README.md").read_text()
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert "(docs/config.md)" in configuration
