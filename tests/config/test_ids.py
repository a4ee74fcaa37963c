"""The id rule (config.plant.ID_PATTERN): ids as plants write them, case-sensitive, and never two
that differ only by case; an id YAML reads as a number or boolean is refused with the fix."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from config import ConfigError, parse_config
from tests.config.test_invalid import BASE, OPCUA, edited, problems

MACHINE = {"ideal_cycle_s": 1.0, "state_map": {1: "running"}}


@pytest.mark.parametrize("ident", ["M1", "FILLER-01", "line_2", "4711", "1st-line", "a" * 63])
def test_ids_as_plants_write_them(ident: str) -> None:
    """Before: upper case and a digit first were refused."""
    doc = edited({("lines", 0, "machines", 2): {"id": ident, **MACHINE}})
    cfg = parse_config(yaml.safe_dump(doc, sort_keys=False), env={})
    assert ident in cfg.machines()


@pytest.mark.parametrize("ident", ["-m1", "_m1", "m.1", "m 1", "été", "a" * 64, ""])
def test_what_is_not_an_id(ident: str) -> None:
    doc = edited({("lines", 0, "machines", 2): {"id": ident, **MACHINE}})
    found = problems(doc)
    assert [p for p, _, _ in found] == ["lines[0].machines[2].id"], found


@pytest.mark.parametrize(("written", "read"), [("4711", "4711"), ("010", "8"), ("NO", "False")])
def test_an_id_yaml_reads_as_no_text_says_to_quote_it(written: str, read: str) -> None:
    """Before: "Input should be a valid string", which does not say why."""
    text = yaml.safe_dump(BASE, sort_keys=False).replace("id: packer", f"id: {written}", 1)
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    found = [(p.path, p.message, p.line) for p in info.value.problems]
    prefix = f"YAML reads this as {read}, not as text: quote the id"
    assert any(p == "lines[0].machines[1].id" and m.startswith(prefix) for p, m, _ in found), found


def _refused(edits: dict[tuple[str | int, ...], Any], path: str, message: str) -> None:
    found = problems(edited(edits))
    assert (path, message) in [(p, m) for p, m, _ in found], found


def test_machines_that_differ_only_by_case_in_one_line() -> None:
    _refused(
        {("lines", 0, "machines", 2): {"id": "Filler", **MACHINE}},
        "lines[0].machines[2].id",
        "'Filler' and 'filler' differ only by case; rename one (ids are case-sensitive)",
    )


def test_machines_that_differ_only_by_case_in_two_lines() -> None:
    line = {"id": "line2", "machines": [{"id": "PACKER", **MACHINE}]}
    _refused(
        {("lines", 1): line},
        "lines[1].machines[0].id",
        "'PACKER' and 'packer' differ only by case; rename one (ids are case-sensitive)",
    )


def test_lines_that_differ_only_by_case() -> None:
    line = {"id": "Line1", "machines": [{"id": "m9", **MACHINE}]}
    _refused(
        {("lines", 1): line},
        "lines[1].id",
        "'Line1' and 'line1' differ only by case; rename one (ids are case-sensitive)",
    )


def test_tags_that_differ_only_by_case() -> None:
    tag = {"machine": "filler", "name": "Temp", "node": "ns=2;s=t2"}
    _refused(
        {(*OPCUA, "tags", 3): tag},
        "sources[0].tags[3].name",
        "'filler.Temp' and 'filler.temp' differ only by case; rename one (ids are case-sensitive)",
    )


def test_the_same_id_twice_is_still_refused_as_before() -> None:
    _refused(
        {("lines", 1): {"id": "line1", "machines": [{"id": "m9", **MACHINE}]}},
        "lines[1].id",
        "line id 'line1' is used twice",
    )
    _refused(
        {("lines", 1): {"id": "line2", "machines": [{"id": "filler", **MACHINE}]}},
        "lines[1].machines[0].id",
        "'filler' is also a machine of line 'line1'; machine ids are plant-wide",
    )
    tag = {"machine": "filler", "name": "temp", "node": "ns=2;s=t2"}
    _refused(
        {(*OPCUA, "tags", 3): tag},
        "sources[0].tags[3]",
        "tag 'filler.temp' is already defined at sources[0].tags[2]",
    )
