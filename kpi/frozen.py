"""Frozen dataclasses built without their generated `__init__`, for the per-bucket hot paths.

A frozen dataclass's `__init__` sets every field through `object.__setattr__`: a `TimeSums`
costs ~2-4 us, a `Kpis` twice that, and a 30-day hourly line series builds tens of thousands of
sums. `fast_constructor(cls)` returns a function taking every field, in declaration order (or by
name), that stores them through the slots' descriptors (or into `__dict__`) directly. Equality,
repr, hash, `replace` and `asdict` stay the dataclass's own, so its result cannot be told from
`cls(*values)` (tests/kpi/test_frozen.py). No defaults are applied: every field must be passed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def fast_constructor(cls: type[T]) -> Callable[..., T]:
    """`f(*values) == cls(*values)` for a frozen dataclass without `__post_init__`."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        raise TypeError(
            f"fast_constructor({cls.__name__}): needs a dataclass without __post_init__"
        )
    names = [f.name for f in dataclasses.fields(cls)]
    for name in names:
        if not name.isidentifier() or name.startswith("_"):
            raise TypeError(f"fast_constructor({cls.__name__}): field name {name!r}")
    # locals and globals of the generated function start with "_", field names cannot
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    if "__slots__" in cls.__dict__:
        for n in names:
            namespace[f"_set_{n}"] = cls.__dict__[n].__set__  # the slot's member descriptor
        body = "".join(f"    _set_{n}(_o, {n})\n" for n in names)
    else:
        body = "    _d = _o.__dict__\n" + "".join(f"    _d[{n!r}] = {n}\n" for n in names)
    source = (
        f"def make_{cls.__name__}({', '.join(names)}):\n    _o = _new(_cls)\n{body}    return _o\n"
    )
    exec(source, namespace)  # as dataclasses builds __init__; the names are checked above
    made: Callable[..., T] = namespace[f"make_{cls.__name__}"]
    return made
