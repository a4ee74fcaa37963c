"""Modbus TCP adapter (MBAP or RTU framing over TCP): codec, request planner, connection, poller.

codec.py       registers <-> values (types, byte/word order, bits, strings, scale/offset)
planner.py     tags -> fewest read requests within the spec's limits
connection.py  one pymodbus client: lock, timeout, retries, reconnect with backoff
adapter.py     ModbusAdapter: pollers per cadence, readings to the sink, status
"""

from adapters.modbus.adapter import ModbusAdapter

__all__ = ["ModbusAdapter"]
