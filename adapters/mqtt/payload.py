"""MQTT payload decoding: JSON field paths or plain scalars, and payload timestamps. Pure.

Values follow `Reading`: numbers and booleans become floats; strings that are not numbers
become text (value None). Anything that cannot give the configured field raises `DecodeError`:
the adapter counts it as malformed and skips it. `Decoder` is `decode` for one topic's tags,
worked out once (the adapter keeps one per topic name); it gives `Columns`, from which the adapter
builds readings without a Python call per value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Sequence
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
    """A JSON value as (value, text): numbers and bools as float, other strings as text."""
    if type(raw) is float:  # the common case first: JSON numbers with a fraction
        if not math.isfinite(raw):
            raise DecodeError(f"not a finite number: {raw!r}")
        return raw, None
    if isinstance(raw, bool):
        return (1.0 if raw else 0.0), None
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:  # a JSON integer beyond any float
            raise DecodeError(f"not a finite number: {raw!r}") from None
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


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one tag's value (and its optional timestamp) sits in a payload, worked out once.

    `field` None: the whole payload is one plain scalar. Otherwise a dot path into JSON; `key` is
    `field` when it names a top-level key (no dots), looked up without a path walk.
    """

    field: str | None = None
    timestamp_field: str | None = None
    timestamp_format: TimestampFormat = "iso8601"
    key: str | None = dataclasses.field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.field is not None and "." not in self.field:
            object.__setattr__(self, "key", self.field)


def decode(
    payload: bytes, specs: Sequence[FieldSpec]
) -> list[tuple[float | None, str | None, dt.datetime | None]]:
    """(value, text, payload timestamp or None) per spec, or DecodeError: a message is used whole.

    The payload is parsed once, and each distinct payload timestamp once, however many specs
    read it (a gateway's JSON object of 20 values is one message feeding 20 tags).
    """
    doc: Any = None
    plain: tuple[float | None, str | None] | None = None
    stamps: dict[tuple[str, str], dt.datetime] = {}
    out = []
    for s in specs:
        if s.field is None:
            if plain is None:
                plain = scalar(payload)
            value, text = plain
        else:
            if doc is None:
                doc = parse_json(payload)
            if s.key is not None and type(doc) is dict and s.key in doc:
                raw = doc[s.key]  # a top-level field: the common case, no path walk
            else:
                raw = get_path(doc, s.field)
            if type(raw) is float and raw - raw == 0.0:  # finite: NaN and inf fail this
                value, text = raw, None
            else:
                value, text = to_value(raw)
        ts = None
        if s.timestamp_field is not None:  # config: only beside a field, so doc is parsed
            stamp_key = (s.timestamp_field, s.timestamp_format)
            ts = stamps.get(stamp_key)
            if ts is None:
                ts = parse_timestamp(get_path(doc, s.timestamp_field), s.timestamp_format)
                stamps[stamp_key] = ts
        out.append((value, text, ts))
    return out


class Columns(NamedTuple):
    """One message's decoded fields as columns, in spec order."""

    values: list[float | None]
    texts: list[str | None] | None  # None when no field is text
    stamps: list[dt.datetime | None]  # each field's payload timestamp, None where it has none

    @classmethod
    def of_rows(cls, rows: list[tuple[float | None, str | None, dt.datetime | None]]) -> Columns:
        if not rows:
            return cls([], None, [])
        values, texts, stamps = map(list, zip(*rows, strict=True))
        return cls(values, None if texts.count(None) == len(texts) else texts, stamps)

    def rows(self) -> list[tuple[float | None, str | None, dt.datetime | None]]:
        """What `decode` gives for the same payload."""
        texts = self.texts if self.texts is not None else [None] * len(self.values)
        return list(zip(self.values, texts, self.stamps, strict=True))


class Decoder:
    """`decode` for one fixed list of specs (one topic's tags), its choices made once.

    The usual gateway payload, a JSON object whose top-level keys are the fields, all numbers
    read with one timestamp field, takes a short path: every value through `float` at once, the
    timestamp parsed once, no per-spec branching. Other specs, and every payload the short path
    does not take cleanly (text, a missing key, NaN), go through `decode`, so results and error
    messages are exactly `decode`'s.
    """

    __slots__ = ("_keys", "_stamp", "specs")

    def __init__(self, specs: Sequence[FieldSpec]) -> None:
        self.specs = tuple(specs)
        keys = [s.key for s in self.specs]
        stamps = {(s.timestamp_field, s.timestamp_format) for s in self.specs}
        short = bool(keys) and None not in keys and len(stamps) == 1
        self._keys: tuple[str, ...] | None = tuple(keys) if short else None  # type: ignore[arg-type]
        self._stamp: tuple[str | None, TimestampFormat] = (
            stamps.pop() if short else (None, "iso8601")
        )

    def __call__(self, payload: bytes) -> Columns:
        keys = self._keys
        if keys is None:
            return Columns.of_rows(decode(payload, self.specs))
        try:
            doc = parse_json(payload)
            # Numbers and booleans; a string only when float() reads it, which is exactly
            # when decode's text rule would give the same number ("on", "RUNNING" fail here).
            values: list[float | None] = list(map(float, [doc[k] for k in keys]))
            total = sum(values)  # type: ignore[arg-type]
            if total - total != 0.0:
                raise ValueError  # NaN or inf somewhere (or a sum beyond floats): decode judges
            field, fmt = self._stamp
            ts = None if field is None else parse_timestamp(get_path(doc, field), fmt)
        except (KeyError, TypeError, ValueError, OverflowError, DecodeError):
            # the reference: raises what is wrong, or agrees
            return Columns.of_rows(decode(payload, self.specs))
        return Columns(values, None, [ts] * len(values))
