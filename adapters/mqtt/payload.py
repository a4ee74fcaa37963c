"""MQTT payload decoding: JSON field paths or plain scalars, and payload timestamps. Pure.

Values follow `Reading`: numbers and booleans become floats; strings that are not numbers
become text (value None). Anything that cannot give the configured field raises `DecodeError`:
the adapter quarantines the message. `Decoder` decodes for one topic's tags, its choices worked
out once (the adapter keeps one per topic name); it gives `Columns`, from which the adapter
builds readings without a Python call per value. tests/adapters/oracles.py holds the plain
per-field reference it is pinned against.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

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
    except RecursionError:  # nested deeper than the parser's stack allows
        raise DecodeError("payload is not JSON we accept: nested too deeply") from None


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
    """A JSON value as (value, text): what `float()` reads (numbers, bools, numeric strings) if
    finite; other strings as text, except true/on and false/off (1 and 0). The one value rule."""
    if not isinstance(raw, str | int | float):  # bool is an int
        raise DecodeError(f"expected a number, bool or string, got {type(raw).__name__}")
    try:
        value = float(raw)
    except ValueError:  # a string that is no number
        text = str(raw)
        low = text.strip().lower()
        return (1.0, None) if low in _TRUE else (0.0, None) if low in _FALSE else (None, text)
    except OverflowError:  # a JSON integer beyond any float
        raise DecodeError(f"not a finite number: {raw!r}") from None
    if value - value != 0.0:  # NaN or infinite
        raise DecodeError(f"not a finite number: {raw!r}")
    return value, None


def scalar(payload: bytes) -> tuple[float | None, str | None]:
    """A plain payload (`42.5`, `true`, `RUNNING`) as (value, text)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise DecodeError("payload is not UTF-8 text") from exc
    if not text:
        raise DecodeError("empty payload")
    return to_value(text)


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
        try:
            return ts.astimezone(dt.UTC)
        except OverflowError:  # 0001-01-01T00:30+01:00 lies before year 1 in UTC
            raise DecodeError(f"timestamp {raw!r} is out of range") from None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise DecodeError(f"timestamp {raw!r} is not a number")
    try:
        seconds = float(raw)
    except (ValueError, OverflowError) as exc:  # OverflowError: an integer beyond any float
        raise DecodeError(f"timestamp {raw!r} is not a number") from exc
    if fmt == "epoch_ms":
        seconds /= 1000.0
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise DecodeError(f"timestamp {raw!r} is out of range") from exc


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one tag's value (and its optional timestamp) sits in a payload: `field` None, the
    whole payload is one plain scalar; otherwise a dot path into JSON."""

    field: str | None = None
    timestamp_field: str | None = None
    timestamp_format: TimestampFormat = "iso8601"


class Columns(NamedTuple):
    """One message's decoded fields as columns, in spec order."""

    values: list[float | None]
    texts: list[str | None] | None  # None when no field is text
    stamps: list[dt.datetime | None]  # each field's payload timestamp, None where it has none


class Decoder:
    """Decodes a payload for one fixed list of specs (one topic's tags), its choices made once.

    The general path parses the payload once and each distinct payload timestamp once, however
    many specs read them (a gateway's JSON object of 20 values is one message feeding 20 tags).
    The usual gateway payload, a JSON object whose top-level keys are the fields, all numbers,
    read with one timestamp field, takes a fast front: `to_value`'s `float` mapped over every
    value at once and one finiteness check for all. Whatever the front does not take cleanly
    (text, a missing key, NaN, a bad timestamp) goes the general path, which raises what is
    wrong or agrees: the front decides no rule of its own.
    """

    __slots__ = ("_keys", "_stamp", "specs")

    def __init__(self, specs: Sequence[FieldSpec]) -> None:
        self.specs = tuple(specs)
        keys = [s.field for s in self.specs if s.field is not None and "." not in s.field]
        stamps = {(s.timestamp_field, s.timestamp_format) for s in self.specs}
        fast = 0 < len(keys) == len(self.specs) and len(stamps) == 1  # top-level keys, one stamp
        self._keys = tuple(keys) if fast else None
        self._stamp: tuple[str | None, TimestampFormat] = (
            stamps.pop() if fast else (None, "iso8601")
        )

    def __call__(self, payload: bytes) -> Columns:
        keys = self._keys
        if keys is None:
            return self._general(payload)
        try:
            doc = parse_json(payload)
            values: list[float | None] = list(map(float, [doc[k] for k in keys]))
            total = sum(values)  # type: ignore[arg-type]
            if total - total != 0.0:
                raise ValueError  # NaN or inf somewhere (or a sum beyond floats)
            field, fmt = self._stamp
            ts = None if field is None else parse_timestamp(get_path(doc, field), fmt)
        except (KeyError, TypeError, ValueError, OverflowError, DecodeError):
            return self._general(payload)
        return Columns(values, None, [ts] * len(values))

    def _general(self, payload: bytes) -> Columns:
        """Spec by spec; DecodeError for the first field that fails: a message is used whole."""
        doc: Any = None
        plain: tuple[float | None, str | None] | None = None
        parsed: dict[tuple[str | None, str], dt.datetime] = {}  # each stamp read once
        values: list[float | None] = []
        texts: list[str | None] = []
        stamps: list[dt.datetime | None] = []
        for s in self.specs:
            if s.field is None:
                if plain is None:
                    plain = scalar(payload)
                value, text = plain
            else:
                if doc is None:
                    doc = parse_json(payload)
                value, text = to_value(get_path(doc, s.field))
            ts, stamp = None, (s.timestamp_field, s.timestamp_format)
            if s.timestamp_field is not None and (ts := parsed.get(stamp)) is None:
                raw = get_path(doc, s.timestamp_field)  # config: only beside a field, so in doc
                ts = parsed[stamp] = parse_timestamp(raw, s.timestamp_format)
            values.append(value)
            texts.append(text)
            stamps.append(ts)
        return Columns(values, None if texts.count(None) == len(texts) else texts, stamps)
