"""The Modbus docs' example is a real config: loaded by the real loader, shown verbatim."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.modbus import ModbusAdapter
from config.loader import parse_config
from config.sources.modbus import ModbusSource, ModbusTag

DOCS = Path(__file__).resolve().parents[2] / "docs" / "adapters"


async def _sink(batch: object) -> None:  # pragma: no cover - never called
    pass


def test_example_loads_through_the_config_loader_and_plans() -> None:
    text = (DOCS / "modbus.example.yaml").read_text(encoding="utf-8")
    cfg = parse_config(text, filename="modbus.example.yaml", env={})
    (source,) = cfg.sources
    assert isinstance(source, ModbusSource)
    assert source.poll_interval_of(2) == 2.0 and source.poll_interval_of(1) == 0.5
    adapter = ModbusAdapter(source, _sink)
    assert sorted(adapter.schedule) == [0.5, 2.0]
    planned = {t.key for reqs in adapter.schedule.values() for r in reqs for t in r.tags}
    assert planned == {t.key for t in source.tags}


def test_markdown_shows_the_example_verbatim() -> None:
    md = (DOCS / "modbus.md").read_text(encoding="utf-8")
    example = (DOCS / "modbus.example.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{example}```" in md


def test_every_option_is_documented() -> None:
    md = (DOCS / "modbus.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", md, flags=re.MULTILINE))
    source_options = set(ModbusSource.model_fields)
    tag_options = {f.alias or name for name, f in ModbusTag.model_fields.items()}
    common = {"machine", "name", "signal", "unit", "counter", "wrap", "deadband", "heartbeat_s"}
    missing = (source_options | tag_options) - documented - common
    assert not missing, f"options without a row in docs/adapters/modbus.md: {sorted(missing)}"
