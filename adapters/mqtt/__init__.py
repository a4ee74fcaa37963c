"""MQTT adapter: topic filters and templates, JSON or scalar payloads, acks after the sink.

transport.py  one paho client: connect, subscribe, bounded hand-over to asyncio, manual acks
ledger.py     which messages may be acknowledged, and what a failed sink call keeps (pure)
decoding.py   topic -> tags, payload -> readings or a quarantined `Malformed` record
payload.py    JSON field paths, plain scalars, payload timestamps (pure); topics.py: filters
adapter.py    MqttAdapter, composing them
"""

from adapters.mqtt.adapter import MqttAdapter

__all__ = ["MqttAdapter"]
