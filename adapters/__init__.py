"""Protocol adapters: PLC traffic in, `Reading`s out. They know nothing of the database."""

from adapters.base import Adapter, Quality, Reading, ReadingSink, SourceStatus
from adapters.errors import AdapterError, ConfigurationError, DecodeError, TransportError

__all__ = [
    "Adapter",
    "AdapterError",
    "ConfigurationError",
    "DecodeError",
    "Quality",
    "Reading",
    "ReadingSink",
    "SourceStatus",
    "TransportError",
]
