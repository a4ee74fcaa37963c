"""docs/adapters/opcua.md's example is a valid config, and the page shows it verbatim."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.opcua.nodeid import parse_node
from config.loader import parse_config
from config.sources.opcua import OpcUaSource

DOCS = Path(__file__).resolve().parents[2] / "docs" / "adapters"


def test_example_config_loads() -> None:
    text = (DOCS / "opcua.example.yaml").read_text()
    cfg = parse_config(text, filename="opcua.example.yaml", env={"FILLER_PLC_PASSWORD": "pw"})
    sources = [s for s in cfg.sources if isinstance(s, OpcUaSource)]
    assert [s.mode for s in sources] == ["subscription", "polling"]
    secured = sources[0]
    assert secured.security.policy.value == "Basic256Sha256"
    assert secured.password is not None and secured.password.get_secret_value() == "pw"
    for _, tag in cfg.tags():
        parse_node(tag.node)  # every node in the docs is a valid node id  # type: ignore[union-attr]


def test_page_shows_the_example() -> None:
    page = (DOCS / "opcua.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    assert (DOCS / "opcua.example.yaml").read_text() in blocks
