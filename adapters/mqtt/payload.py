"""MQTT payload decoding: JSON field paths or plain scalars, and payload timestamps. Pure.

Values follow `Reading`: numbers and booleans become floats; strings that are not numbers
become text (value None). Each field is decoded on its own: one that cannot be read gives its
`DecodeError` and the others are read all the same. `MissingField` (a `DecodeError`) says the
payload lacks the field (no such key, a list too short): gateways that publish only what changed
send such payloads, so the adapter counts it per tag. Any other `DecodeError` (not JSON, a list,
object or null where a value should be, NaN, a bad or missing timestamp) makes the message
malformed. `Decoder` decodes for one topic's tags, its choices worked out once (the adapter keeps
one per topic name); it gives `Columns`, from which the adapter builds readings without a Python
call per value. tests/adapters/oracles.py holds the plain per-field reference it is pinned
against.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

from adapters.errors import DecodeError

TimestampFormat = Literal["iso8601", "epoch_s", "epoch_ms"]

_T = TypeVar("_T")
_UNREAD: Any = object()  # the payload not parsed yet

_TRUE = {"true", "on"}
_FALSE = {"false", "off"}


class MissingField(DecodeError):
    """The payload lacks a configured field (no such key, a list too short): not malformed."""


def parse_json(payload: bytes) -> Any:
    """The payload as JSON; UTF-8 only (RFC 8259)."""
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"payload is not JSON: {exc}") from exc
    except RecursionError:  # nested deeper than the parser's stack allows
        raise DecodeError("payload is not JSON we accept: nested too deeply") from None


def get_path(doc: Any, path: str) -> Any:
    """Follow a dot path into JSON: `a.b.0.c`; an integer part indexes a list (negative too).

    `MissingField` where an object has no such key or a list no such item; `DecodeError` where
    the payload has another shape (a part of a number or string, a word as a list's index)."""
    node = doc
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                raise MissingField(f"no field {part!r} (path {path!r})")
            node = node[part]
        elif isinstance(node, list):
            try:
                index = int(part)
            except ValueError:
                raise DecodeError(f"{part!r} of a list (path {path!r})") from None
            try:
                node = node[index]
            except IndexError:
                raise MissingField(f"no list item {part!r} (path {path!r})") from None
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


def payload_timestamp(doc: Any, path: str, fmt: TimestampFormat) -> dt.datetime:
    """The timestamp at `path` in a JSON payload. Absent, it is a plain `DecodeError`, not
    `MissingField`: the tag's value is there, and it cannot be placed in time."""
    try:
        raw = get_path(doc, path)
    except MissingField as exc:
        raise DecodeError(str(exc)) from None
    return parse_timestamp(raw, fmt)


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
    # Why each spec gave no value (its value, text and stamp are None); None when every spec did.
    errors: list[DecodeError | None] | None = None


class _Failed(NamedTuple):
    """A step that failed for every spec that needs it (the payload is not JSON): done once."""

    error: DecodeError


def _attempt(step: Callable[..., _T], *args: Any) -> _T | _Failed:
    try:
        return step(*args)
    except DecodeError as exc:
        return _Failed(exc)


def _result(outcome: _T | _Failed) -> _T:
    if isinstance(outcome, _Failed):
        raise outcome.error
    return outcome


class Decoder:
    """Decodes a payload for one fixed list of specs (one topic's tags), its choices made once.

    The general path parses the payload once and each distinct payload timestamp once, however
    many specs read them (a gateway's JSON object of 20 values is one message feeding 20 tags),
    and decodes each spec on its own: a spec that fails gets its error, the others their values.
    The usual gateway payload, a JSON object whose top-level keys are the fields, all numbers,
    read with one timestamp field, takes a fast front: `to_value`'s `float` mapped over every
    value at once and one finiteness check for all. Whatever the front does not take cleanly
    (text, a missing key, NaN, a bad timestamp) goes the general path, which decides: the front
    decides no rule of its own.
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
        doc: Any = _attempt(parse_json, payload)  # `_Failed`, a tuple: `doc[k]` raises below
        try:
            values: list[float | None] = list(map(float, [doc[k] for k in keys]))
            total = sum(values)  # type: ignore[arg-type]
            if total - total != 0.0:
                raise ValueError  # NaN or inf somewhere (or a sum beyond floats)
            field, fmt = self._stamp
            ts = None if field is None else payload_timestamp(doc, field, fmt)
        except (KeyError, TypeError, ValueError, OverflowError, DecodeError):
            return self._general(payload, doc)  # parsed once (a partial payload is usual)
        return Columns(values, None, [ts] * len(values))

    def _general(self, payload: bytes, doc: Any = _UNREAD) -> Columns:
        """Spec by spec; each that fails gets its DecodeError, and None in the other columns.
        `doc`: the payload's JSON (or `_Failed`) if the fast front parsed it already."""
        plain: tuple[float | None, str | None] | _Failed | None = None
        parsed: dict[tuple[str, TimestampFormat], dt.datetime | _Failed] = {}  # each stamp once
        values: list[float | None] = []
        texts: list[str | None] = []
        stamps: list[dt.datetime | None] = []
        errors: list[DecodeError | None] = []
        for s in self.specs:
            value: float | None = None
            text: str | None = None
            ts: dt.datetime | None = None
            error: DecodeError | None = None
            try:
                if s.field is None:
                    if plain is None:
                        plain = _attempt(scalar, payload)
                    value, text = _result(plain)
                else:
                    if doc is _UNREAD:
                        doc = _attempt(parse_json, payload)
                    value, text = to_value(get_path(_result(doc), s.field))
                    if s.timestamp_field is not None:  # config: only beside a field, so in doc
                        stamp = (s.timestamp_field, s.timestamp_format)
                        if stamp not in parsed:
                            parsed[stamp] = _attempt(payload_timestamp, doc, *stamp)
                        ts = _result(parsed[stamp])
            except DecodeError as exc:
                value, text, error = None, None, exc
            values.append(value)
            texts.append(text)
            stamps.append(ts)
            errors.append(error)
        return Columns(
            values,
            None if texts.count(None) == len(texts) else texts,
            stamps,
            None if errors.count(None) == len(errors) else errors,
        )
