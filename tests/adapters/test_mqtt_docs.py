"""docs/adapters/mqtt.md's example is a valid config, and the page shows it verbatim."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.mqtt.adapter import MqttAdapter
from config.loader import parse_config
from config.sources.mqtt import MqttSource

DOCS = Path(__file__).resolve().parents[2] / "docs" / "adapters"


async def _sink(batch: object) -> None:
    return None


def test_example_config_loads() -> None:
    text = (DOCS / "mqtt.example.yaml").read_text()
    cfg = parse_config(text, filename="mqtt.example.yaml", env={"MQTT_PASSWORD": "pw"})
    sources = [s for s in cfg.sources if isinstance(s, MqttSource)]
    gateway, templated = sources
    assert gateway.tls is not None and gateway.qos == 1 and not gateway.clean_start
    assert [t.topic_filter for t in templated.tags][:2] == [
        "line1/values/palletizer/state",
        "line1/values/palletizer/good_count",
    ]
    assert MqttAdapter(templated, _sink)._filters == ["line1/values/+/+"]


def test_page_shows_the_example() -> None:
    page = (DOCS / "mqtt.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    assert (DOCS / "mqtt.example.yaml").read_text() in blocks
