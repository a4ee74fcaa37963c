"""OPC UA source options: the checks that catch mistakes at load time; monitored item requests."""

from __future__ import annotations

from typing import Any

import pytest
from asyncua import ua
from pydantic import ValidationError

from adapters.opcua import OpcUaAdapter
from config.sources.opcua import OpcUaSource


def source(**options: Any) -> OpcUaSource:
    data: dict[str, Any] = {
        "protocol": "opcua",
        "name": "plc",
        "endpoint": "opc.tcp://h:4840",
        "tags": [{"machine": "m1", "name": "t", "node": "ns=2;s=x"}],
    }
    data.update(options)
    return OpcUaSource.model_validate(data)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"security": {"policy": "Basic256Sha256", "mode": "None"}}, "policy None goes with"),
        ({"security": {"policy": "Basic256Sha256", "mode": "Sign"}}, "server_certificate"),
        ({"security": {"certificate": "/c.der"}}, "together"),
        (
            {"tags": [{"machine": "m1", "name": "t", "node": "x", "deadband_type": "absolute"}]},
            "together",
        ),
        (
            {
                "tags": [
                    {
                        "machine": "m1",
                        "name": "t",
                        "node": "x",
                        "deadband_type": "percent",
                        "deadband_value": 150,
                    }
                ]
            },
            "0..100",
        ),
        ({"endpoint": "http://h:4840"}, "opc"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "reconnect_max_s"),
    ],
)
def test_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        source(**options)


async def _sink(batch: object) -> None:
    return None


def test_monitored_item_request() -> None:
    src = source(
        sampling_interval_ms=100,
        queue_size=5,
        tags=[
            {"machine": "m1", "name": "a", "node": "ns=2;s=a"},
            {
                "machine": "m1",
                "name": "b",
                "node": "ns=2;s=b",
                "deadband_type": "percent",
                "deadband_value": 2.5,
            },
        ],
    )
    adapter = OpcUaAdapter(src, _sink)
    plain = adapter._monitored_item(1, src.tags[0], ua.NodeId("a", 2))
    assert plain.RequestedParameters.SamplingInterval == 100
    assert plain.RequestedParameters.QueueSize == 5
    assert plain.RequestedParameters.DiscardOldest
    assert not isinstance(plain.RequestedParameters.Filter, ua.DataChangeFilter)
    banded = adapter._monitored_item(2, src.tags[1], ua.NodeId("b", 2))
    flt = banded.RequestedParameters.Filter
    assert isinstance(flt, ua.DataChangeFilter)
    assert (flt.DeadbandType, flt.DeadbandValue) == (ua.DeadbandType.Percent, 2.5)
    assert flt.Trigger == ua.DataChangeTrigger.StatusValue


def test_bad_node_is_reported_not_raised() -> None:
    adapter = OpcUaAdapter(
        source(
            tags=[
                {"machine": "m1", "name": "t", "node": "Line1.State"},
                {"machine": "m1", "name": "u", "node": "ns=2;i=1"},
            ]
        ),
        _sink,
    )
    assert adapter.status.extra["bad_nodes"] == 1


async def test_full_queue_drops_the_oldest_and_counts() -> None:
    """The subscription handler never blocks asyncua: a full queue loses its oldest reading."""
    import asyncio

    adapter = OpcUaAdapter(source(), _sink, queue_size=2)
    adapter._queue = asyncio.Queue(2)
    tag = adapter.source.tags[0]
    for v in (1, 2, 3):
        adapter._emit(tag, ua.DataValue(ua.Variant(float(v))))
    kept = [adapter._queue.get_nowait() for _ in range(2)]
    assert [r.value for r in kept if r is not None] == [2.0, 3.0]
    assert adapter.status.extra["overflow"] == 1
