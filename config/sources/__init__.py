"""Source (PLC connection) configs, one module per protocol."""

from typing import Annotated

from pydantic import Field

from config.sources.modbus import ModbusSource, ModbusTag
from config.sources.mqtt import MqttSource, MqttTag
from config.sources.opcua import OpcUaSource, OpcUaTag
from config.sources.sparkplug import SparkplugSource, SparkplugTag

Source = Annotated[
    OpcUaSource | ModbusSource | MqttSource | SparkplugSource, Field(discriminator="protocol")
]
Tag = OpcUaTag | ModbusTag | MqttTag | SparkplugTag

__all__ = [
    "ModbusSource",
    "ModbusTag",
    "MqttSource",
    "MqttTag",
    "OpcUaSource",
    "OpcUaTag",
    "Source",
    "SparkplugSource",
    "SparkplugTag",
    "Tag",
]
