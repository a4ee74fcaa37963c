"""OPC UA adapter: subscriptions or polling, every standard node id form, secured sessions."""

from adapters.opcua.adapter import OpcUaAdapter
from adapters.opcua.browse import browse

__all__ = ["OpcUaAdapter", "browse"]
