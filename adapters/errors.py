"""Adapter errors, translated at each adapter's edge from its library's errors (`raise … from`).

AdapterError                    base; `retriable` says whether trying again can help
├── TransportError              connection refused/lost, timeout        retriable
├── DecodeError                 a value or payload cannot be decoded    not retriable
└── ConfigurationError          node/address the device rejects         not retriable
"""

from __future__ import annotations


class AdapterError(Exception):
    retriable: bool = False

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class TransportError(AdapterError):
    retriable = True


class DecodeError(AdapterError):
    retriable = False


class ConfigurationError(AdapterError):
    retriable = False
