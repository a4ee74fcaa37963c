"""Source (PLC connection) configs, one module per protocol."""

from typing import Annotated

from pydantic import Field

from config.sources.modbus import ModbusSource, ModbusTag
from config.sources.mqtt import MqttSource, MqttTag
from config.sources.opcua import OpcUaSource, OpcUaTag

Source = Annotated[OpcUaSource | ModbusSource | MqttSource, Field(discriminator="protocol")]
Tag = OpcUaTag | ModbusTag | MqttTag

__all__ = [
    "ModbusSource",
    "ModbusTag",
    "MqttSource",
    "MqttTag",
    "OpcUaSource",
    "OpcUaTag",
    "Source",
    "Tag",
]
