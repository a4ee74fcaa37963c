"""MQTT source options: topic templates and the checks that catch mistakes at load time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.mqtt import MqttAdapter
from config.sources.mqtt import MqttSource


def source(**options: Any) -> MqttSource:
    data: dict[str, Any] = {
        "protocol": "mqtt",
        "name": "gw",
        "host": "127.0.0.1",
        "tags": [{"machine": "m1", "name": "t", "topic": "a/b"}],
    }
    data.update(options)
    return MqttSource.model_validate(data)


def test_template_fills_tags_without_topic() -> None:
    src = source(
        topic_template="plant/{machine}/{name}",
        tags=[
            {"machine": "m1", "name": "speed"},
            {"machine": "m2", "name": "speed", "topic": "other/{machine}/speed", "field": "v"},
        ],
    )
    assert [t.topic for t in src.tags] == ["plant/{machine}/{name}", "other/{machine}/speed"]
    assert [t.reading_address for t in src.tags] == ["plant/m1/speed#", "other/m2/speed#v"]
    assert src.effective_client_id == "shopfloor-gw"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tags": [{"machine": "m1", "name": "t", "topic": "a/#/b"}]}, "'#'"),
        (
            {"tags": [{"machine": "m1", "name": "t", "topic": "a/x{machine}"}]},
            "whole topic segment",
        ),
        ({"tags": [{"machine": "m1", "name": "t", "topic": "a/{line}"}]}, "unknown placeholder"),
        ({"tags": [{"machine": "m1", "name": "t"}]}, "Field required"),
        ({"topic_template": "a/+x/{name}"}, "must be a whole segment"),
        (
            {"tags": [{"machine": "m1", "name": "t", "topic": "a", "timestamp_field": "ts"}]},
            "timestamp_field needs field",
        ),
        ({"clean_start": False, "session_expiry_s": 0}, "session_expiry_s"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "reconnect_max_s"),
        ({"tls": {"cert_file": "/x.pem"}}, "together"),
        ({"shared_group": "central/a"}, "shared_group"),  # a group name is one topic level
        ({"shared_group": "+"}, "shared_group"),
    ],
)
def test_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        source(**options)


async def test_unreadable_tls_files_are_reported_not_raised() -> None:
    adapter = MqttAdapter(source(tls={"ca_file": "/nonexistent/ca.pem"}), _sink)
    task = asyncio.create_task(adapter.run())
    for _ in range(100):
        if adapter.status.errors:
            break
        await asyncio.sleep(0.02)
    assert adapter.status.errors == 1 and "TLS" in (adapter.status.last_error or "")
    await asyncio.wait_for(adapter.stop(), 5)
    await asyncio.wait_for(task, 5)


async def _sink(batch: object) -> None:
    return None
