"""Planner cases: which tags share a request, and where the spec's limits cut."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.modbus.planner import (
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    ReadRequest,
    plan,
)
from config.sources.modbus import ModbusTag, RegisterKind


def tag(address: int, **options: Any) -> ModbusTag:
    name = options.pop("name", f"t{address}")
    return ModbusTag.model_validate({"machine": "m", "name": name, "address": address, **options})


def shape(requests: list[ReadRequest]) -> list[tuple[int, str, int, int, int]]:
    """(unit, table, address, count, number of tags) of each request."""
    return [(r.unit_id, r.table.value, r.address, r.count, len(r.tags)) for r in requests]


def on_unit(unit: int, *tags: ModbusTag) -> list[tuple[int, ModbusTag]]:
    return [(unit, t) for t in tags]


def test_spec_limits_are_named() -> None:
    assert (MAX_REGISTERS_PER_READ, MAX_BITS_PER_READ) == (125, 2000)


CASES: list[tuple[str, list[tuple[int, ModbusTag]], int, list[tuple[int, str, int, int, int]]]] = [
    (
        "adjacent registers merge",
        on_unit(1, tag(0), tag(1), tag(2, type="uint32"), tag(4, type="float64")),
        0,
        [(1, "holding_register", 0, 8, 4)],
    ),
    (
        "a gap within max_gap is read through",
        on_unit(1, tag(0), tag(5, type="float32")),
        4,
        [(1, "holding_register", 0, 7, 2)],
    ),
    (
        "a gap wider than max_gap splits",
        on_unit(1, tag(0), tag(6, type="float32")),
        4,
        [(1, "holding_register", 0, 1, 1), (1, "holding_register", 6, 2, 1)],
    ),
    (
        "max_gap 0 still merges what touches",
        on_unit(1, tag(10), tag(11), tag(13)),
        0,
        [(1, "holding_register", 10, 2, 2), (1, "holding_register", 13, 1, 1)],
    ),
    (
        "file order does not matter",
        on_unit(1, tag(4, type="uint32"), tag(0), tag(2)),
        8,
        [(1, "holding_register", 0, 6, 3)],
    ),
    (
        "overlapping tags share registers",
        on_unit(
            1,
            tag(0, type="uint32"),
            tag(0, name="hi", type="int16"),
            tag(1, name="bit", type="bool", bit=3),
        ),
        0,
        [(1, "holding_register", 0, 2, 3)],
    ),
    (
        "tables are never mixed",
        on_unit(
            1,
            tag(0),
            tag(1, register="input_register"),
            tag(0, name="c", register="coil", type="bool"),
            tag(1, name="d", register="discrete_input", type="bool"),
        ),
        8,
        [
            (1, "coil", 0, 1, 1),
            (1, "discrete_input", 1, 1, 1),
            (1, "holding_register", 0, 1, 1),
            (1, "input_register", 1, 1, 1),
        ],
    ),
    (
        "units are never mixed",
        [(2, tag(0)), (1, tag(1)), (2, tag(1, name="x"))],
        8,
        [(1, "holding_register", 1, 1, 1), (2, "holding_register", 0, 2, 2)],
    ),
    (
        "125 registers fit one request",
        on_unit(1, tag(0), tag(124)),
        200,
        [(1, "holding_register", 0, 125, 2)],
    ),
    (
        "the 126th register starts a new request",
        on_unit(1, tag(0), tag(124, type="uint32")),
        200,
        [(1, "holding_register", 0, 1, 1), (1, "holding_register", 124, 2, 1)],
    ),
    (
        "a long string fills a request alone",
        on_unit(1, tag(0), tag(1, type="string", length=125)),
        0,
        [(1, "holding_register", 0, 1, 1), (1, "holding_register", 1, 125, 1)],
    ),
    (
        "coils merge up to 2000 bits",
        on_unit(1, *(tag(a, register="coil", type="bool") for a in (0, 1000, 1999, 2000))),
        1000,
        [(1, "coil", 0, 2000, 3), (1, "coil", 2000, 1, 1)],
    ),
]


@pytest.mark.parametrize(("case", "tags", "max_gap", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan(
    case: str,
    tags: list[tuple[int, ModbusTag]],
    max_gap: int,
    expected: list[tuple[int, str, int, int, int]],
) -> None:
    requests = plan(tags, max_gap=max_gap)
    assert shape(requests) == expected
    for request in requests:  # every tag lies inside its request, within the limit
        limit = MAX_BITS_PER_READ if request.table.is_bit else MAX_REGISTERS_PER_READ
        assert request.count <= limit
        for t in request.tags:
            assert request.address <= t.address
            assert t.address + t.register_count <= request.address + request.count
    assert sorted(id(t) for r in requests for t in r.tags) == sorted(id(t) for _, t in tags)


def test_slice_for_picks_each_tags_registers() -> None:
    (request,) = plan(on_unit(1, tag(3), tag(5, type="uint32")), max_gap=1)
    data = [30, 40, 50, 60]
    assert [list(request.slice_for(t, data)) for t in request.tags] == [[30], [50, 60]]
    assert request.table is RegisterKind.HOLDING_REGISTER
