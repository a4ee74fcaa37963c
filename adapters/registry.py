"""Source config -> adapter, by protocol. Imports are lazy: a plant without OPC UA sources does
not pay for importing asyncua, and one protocol's broken install does not stop the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.base import Adapter, MalformedSink, ReadingSink
from adapters.errors import ConfigurationError

if TYPE_CHECKING:
    from config.sources import Source


def create_adapter(
    source: Source, sink: ReadingSink, malformed: MalformedSink | None = None
) -> Adapter:
    """The adapter for `source` (by its `protocol`), delivering to `sink`; not yet running.
    Messages of a source that can be malformed (MQTT payloads) go to `malformed` if given."""
    match source.protocol:
        case "modbus":
            from adapters.modbus import ModbusAdapter

            return ModbusAdapter(source, sink)
        case "opcua":
            from adapters.opcua import OpcUaAdapter

            return OpcUaAdapter(source, sink)
        case "mqtt":
            from adapters.mqtt import MqttAdapter

            return MqttAdapter(source, sink, malformed=malformed)
        case "sparkplug":
            from adapters.sparkplug import SparkplugAdapter

            return SparkplugAdapter(source, sink, malformed=malformed)
    raise ConfigurationError(f"no adapter for protocol {source.protocol!r}", source=source.name)
