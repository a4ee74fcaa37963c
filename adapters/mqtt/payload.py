"""MQTT payload decoding: JSON field paths or plain scalars, and payload timestamps. Pure.

Values follow `Reading`: numbers and booleans become floats; strings that are not numbers
become text (value None). Anything that cannot give the configured field raises `DecodeError`:
the adapter counts it as malformed and skips it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Literal

from adapters.errors import DecodeError

TimestampFormat = Literal["iso8601", "epoch_s", "epoch_ms"]

_TRUE = {"true", "on"}
_FALSE = {"false", "off"}


def parse_json(payload: bytes) -> Any:
    """The payload as JSON; UTF-8 only (RFC 8259)."""
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"payload is not JSON: {exc}") from exc


def get_path(doc: Any, path: str) -> Any:
    """Follow a dot path into JSON: `a.b.0.c`; an integer part indexes a list (negative too)."""
    node = doc
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                raise DecodeError(f"no field {part!r} (path {path!r})")
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise DecodeError(f"no list item {part!r} (path {path!r})") from None
        else:
            raise DecodeError(f"{part!r} of a {type(node).__name__} (path {path!r})")
    return node


def to_value(raw: Any) -> tuple[float | None, str | None]:
    """A JSON value as (value, text): numbers and bools as float, other strings as text."""
    if type(raw) is float:  # the common case first: JSON numbers with a fraction
        if not math.isfinite(raw):
            raise DecodeError(f"not a finite number: {raw!r}")
        return raw, None
    if isinstance(raw, bool):
        return (1.0 if raw else 0.0), None
    if isinstance(raw, int | float):
        value = float(raw)
        if not math.isfinite(value):
            raise DecodeError(f"not a finite number: {raw!r}")
        return value, None
    if isinstance(raw, str):
        return _scalar_text(raw)
    raise DecodeError(f"expected a number, bool or string, got {type(raw).__name__}")


def scalar(payload: bytes) -> tuple[float | None, str | None]:
    """A plain payload (`42.5`, `true`, `RUNNING`) as (value, text)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise DecodeError("payload is not UTF-8 text") from exc
    if not text:
        raise DecodeError("empty payload")
    return _scalar_text(text)


def _scalar_text(text: str) -> tuple[float | None, str | None]:
    low = text.strip().lower()
    if low in _TRUE:
        return 1.0, None
    if low in _FALSE:
        return 0.0, None
    try:
        value = float(low)
    except ValueError:
        return None, text
    if not math.isfinite(value):
        raise DecodeError(f"not a finite number: {text!r}")
    return value, None


def parse_timestamp(raw: Any, fmt: TimestampFormat) -> dt.datetime:
    """A payload timestamp as an aware UTC datetime; ISO 8601 without offset is taken as UTC."""
    if fmt == "iso8601":
        if not isinstance(raw, str):
            raise DecodeError(f"timestamp {raw!r} is not an ISO 8601 string")
        try:
            ts = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise DecodeError(f"timestamp {raw!r} is not ISO 8601") from exc
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=dt.UTC)
        return ts.astimezone(dt.UTC)
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise DecodeError(f"timestamp {raw!r} is not a number")
    try:
        seconds = float(raw)
    except ValueError as exc:
        raise DecodeError(f"timestamp {raw!r} is not a number") from exc
    if fmt == "epoch_ms":
        seconds /= 1000.0
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise DecodeError(f"timestamp {raw!r} is out of range") from exc


def extract(
    payload: bytes,
    *,
    field: str | None,
    timestamp_field: str | None = None,
    timestamp_format: TimestampFormat = "iso8601",
    doc: Any = None,
) -> tuple[float | None, str | None, dt.datetime | None]:
    """(value, text, payload timestamp or None) of one tag from one payload.

    `doc` is the payload already parsed as JSON, so a message feeding several tags is parsed once.
    """
    needs_json = field is not None or timestamp_field is not None
    if needs_json and doc is None:
        doc = parse_json(payload)
    if field is None:
        value, text = scalar(payload) if not needs_json else to_value(doc)
    else:
        value, text = to_value(get_path(doc, field))
    ts = None
    if timestamp_field is not None:
        ts = parse_timestamp(get_path(doc, timestamp_field), timestamp_format)
    return value, text, ts
