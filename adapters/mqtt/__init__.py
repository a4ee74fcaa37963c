"""MQTT adapter: topic filters and templates, JSON or scalar payloads, acks after the sink."""

from adapters.mqtt.adapter import MqttAdapter

__all__ = ["MqttAdapter"]
