"""docs/adapters/sparkplug.md's example is a valid config, and the page shows it verbatim."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.sparkplug.adapter import SparkplugAdapter
from config.loader import parse_config
from config.sources.sparkplug import SparkplugSource

DOCS = Path(__file__).resolve().parents[2] / "docs" / "adapters"


async def _sink(batch: object) -> None:
    return None


def test_example_config_loads() -> None:
    text = (DOCS / "sparkplug.example.yaml").read_text()
    cfg = parse_config(text, filename="sparkplug.example.yaml", env={"MQTT_PASSWORD": "pw"})
    (source,) = cfg.sources
    assert isinstance(source, SparkplugSource)
    assert (source.host_id, source.primary_host, source.groups) == (
        "shopfloor-line1",
        True,
        ["Line1"],
    )
    assert [t.reading_address for t in source.tags][::4] == [
        "Line1/PressGW/Press1#Status/State",
        "Line1/+#Oven/State",
    ]
    adapter = SparkplugAdapter(source, _sink)
    assert adapter._transport.filters == ["spBv1.0/Line1/#", "spBv1.0/STATE/shopfloor-line1"]


def test_page_shows_the_example() -> None:
    page = (DOCS / "sparkplug.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    assert (DOCS / "sparkplug.example.yaml").read_text() in blocks
