"""Errors of the KPI engine that callers map to HTTP answers: unknown ids (404), bad input (422)."""

from __future__ import annotations

import datetime as dt


class UnknownEntity(KeyError):
    """No line or machine with this id in the configuration."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(kind, ident)
        self.kind = kind
        self.ident = ident

    def __str__(self) -> str:
        return f"unknown {self.kind} {self.ident!r}"


class BadRequest(ValueError):
    """Input the engine cannot answer: the message says what and where."""


class BadWindow(BadRequest):
    """start >= end, or a naive datetime."""

    def __init__(self, start: dt.datetime, end: dt.datetime, why: str) -> None:
        super().__init__(f"bad window [{start.isoformat()}, {end.isoformat()}): {why}")


class BadBucket(BadRequest):
    """A series bucket other than 'day', 'shift' or a size dividing a day."""


class BadKind(BadRequest):
    """A kind other than 'line' or 'machine'."""
