"""Every `Bounds` in the config model, as rows of docs/config.md's table of numeric bounds."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from config.bounds import Bounds, _number
from config.model import ShopfloorConfig

Row = tuple[str, str, str]  # key, accepted range, where (protocols, or "")


def span(b: Bounds) -> str:
    """The range as docs/config.md tables it: '0.001 to 86400 s', '0 to below 1'."""
    unit = f" {b.unit}" if b.unit else ""
    lo = f"{'above ' if b.lo_open else ''}{_number(b.lo)}"
    if b.hi is None:
        return f"{lo}{unit}" if b.lo_open else f"{lo}{unit} or more"
    return f"{lo} to {'below ' if b.hi_open else ''}{_number(b.hi)}{unit}"


def _protocol(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("protocol")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return str(get_args(field.annotation)[0])


def _walk(annotation: Any, metadata: list[Any], key: str, where: str) -> Iterator[Row]:
    for item in metadata:
        if isinstance(item, Bounds):
            yield key, span(item), where
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        yield from _walk(args[0], list(args[1:]), key, where)
    elif origin in (Union, types.UnionType):
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _walk(arg, [], key, _protocol(arg) or where)
            else:
                yield from _walk(arg, [], key, where)
    elif origin is list:
        yield from _walk(args[0], [], f"{key}[]", where)
    elif origin is dict:
        yield from _walk(args[0], [], f"{key} keys", where)
        yield from _walk(args[1], [], f"{key}.<id>", where)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            child = f"{key}.{info.alias or name}" if key else (info.alias or name)
            yield from _walk(info.annotation, list(info.metadata), child, where)


PROTOCOLS = {"opcua", "modbus", "mqtt", "sparkplug"}


def bounds_rows() -> list[Row]:
    """(key, range, protocols) with the protocols of a key joined: `sources[].port` is one row."""
    merged: dict[tuple[str, str], set[str]] = {}
    for key, span, where in _walk(ShopfloorConfig, [], "", ""):
        merged.setdefault((key, span), set()).add(where)
    return [
        (key, span, "all" if where == PROTOCOLS else ", ".join(sorted(w for w in where if w)))
        for (key, span), where in merged.items()
    ]
