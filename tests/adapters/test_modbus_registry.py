"""The registry picks each protocol's adapter class, importing it only when asked."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from adapters.base import Reading
from adapters.modbus import ModbusAdapter
from adapters.registry import create_adapter
from config.loader import load_config

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


async def sink(batch: Sequence[Reading]) -> None:  # pragma: no cover - never called
    pass


@pytest.mark.parametrize(
    ("protocol", "module", "cls"),
    [
        ("modbus", "adapters.modbus", "ModbusAdapter"),
        ("opcua", "adapters.opcua", "OpcUaAdapter"),
        ("mqtt", "adapters.mqtt", "MqttAdapter"),
    ],
)
def test_create_adapter_dispatches_on_protocol(protocol: str, module: str, cls: str) -> None:
    try:
        getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        pytest.skip(f"{module}.{cls} is not there yet (another engineer's work in progress)")
    source = next(s for s in load_config(DEMO, env={}).sources if s.protocol == protocol)
    adapter = create_adapter(source, sink)
    assert type(adapter).__name__ == cls
    assert adapter.status.source == source.name and adapter.status.protocol == protocol


def test_demo_modbus_source_plans_two_units_in_two_reads_each_table() -> None:
    source = next(s for s in load_config(DEMO, env={}).sources if s.protocol == "modbus")
    adapter = create_adapter(source, sink)
    assert isinstance(adapter, ModbusAdapter)
    (requests,) = adapter.schedule.values()
    assert [(r.unit_id, r.table.value, r.address, r.count) for r in requests] == [
        (1, "holding_register", 0, 12),
        (2, "coil", 0, 1),
        (2, "holding_register", 0, 10),
    ]
