"""Sparkplug source options through the real config model: ids, wildcards, the session."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from config.sources.sparkplug import SparkplugSource


def source(**changes: Any) -> SparkplugSource:
    tag = {"machine": "m", "name": "state", "group": "G", "edge_node": "E", "metric": "a/b"}
    data: dict[str, Any] = {
        "protocol": "sparkplug",
        "name": "spb",
        "host": "127.0.0.1",
        "host_id": "h",
        "tags": [{**tag, **changes.pop("tag", {})}],
        **changes,
    }
    return SparkplugSource.model_validate(data)


@pytest.mark.parametrize(
    ("tag", "address"),
    [
        ({}, "G/E#a/b"),
        ({"device": "D"}, "G/E/D#a/b"),
        ({"group": "+", "edge_node": "+"}, "+/+#a/b"),
    ],
)
def test_reading_address(tag: dict[str, str], address: str) -> None:
    assert source(tag=tag).tags[0].reading_address == address


@pytest.mark.parametrize(
    "changes",
    [
        {"tag": {"group": "a/b"}},
        {"tag": {"edge_node": "#"}},
        {"tag": {"device": "+"}},
        {"tag": {"group": "x+"}},
        {"host_id": "h/1"},
        {"host_id": ""},
        {"tag": {"metric": ""}},
        {"reconnect_min_s": 5, "reconnect_max_s": 1},
    ],
)
def test_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        source(**changes)


def test_session_is_fixed_by_the_spec() -> None:
    s = source()
    assert (s.clean_start, s.session_expiry_s, s.qos) == (True, 0, 1)
    assert s.effective_client_id == "shopfloor-spb"
    assert s.groups == ["G"]
    assert source(tag={"group": "+"}).groups == ["+"]
