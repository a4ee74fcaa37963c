"""Sparkplug B 3.0 host application: edge nodes' births, data and deaths to readings.

schema.py     the payload messages built at run time from the spec's field numbers (protobuf)
payload.py    bytes -> payload fields; values by datatype; the Rebirth command (pure)
topics.py     Sparkplug topic names: parsed, subscribed, published (pure)
session.py    per edge node: births, aliases, bdSeq, seq, deaths, when to ask a Rebirth (pure)
scope.py      a birth's metrics resolved once; received metrics -> readings (the hot path)
tagmap.py     Sparkplug addresses -> reading addresses of the configured tags
host.py       our STATE birth and death payloads (pure)
transport.py  the MQTT transport plus STATE will/birth and publishing
adapter.py    SparkplugAdapter, composing them
"""

from adapters.sparkplug.adapter import SparkplugAdapter

__all__ = ["SparkplugAdapter"]
