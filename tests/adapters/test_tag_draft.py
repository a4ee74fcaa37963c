"""Draft tag maps (adapters.tag_draft): names, machine guesses, and YAML that reads back."""

from __future__ import annotations

import pytest
import yaml

from adapters.tag_draft import (
    PLACEHOLDER_MACHINE,
    Found,
    comment,
    draft_tags,
    machine_id,
    render_tags,
    snake_name,
    yaml_scalar,
)
from config.document import read_document


@pytest.mark.parametrize(
    ("parts", "name"),
    [
        (["State"], "state"),
        (["GoodCount"], "good_count"),
        (["Drive", "SpeedPV"], "drive_speed_pv"),
        (["HTTPServer"], "http_server"),
        (["Axis1Pos"], "axis1_pos"),
        (['"DB_Filler"', '"Temp"'], "db_filler_temp"),
        (["Füllstand"], "fullstand"),
        (["zone 1 / temp (°C)"], "zone_1_temp_c"),
        (["axes", "0", "pos"], "axes_0_pos"),
        (["***"], "value"),
        ([], "value"),
        (["x" * 80], "x" * 63),
    ],
)
def test_snake_name(parts: list[str], name: str) -> None:
    assert snake_name(parts) == name


@pytest.mark.parametrize(
    ("text", "ident"),
    [
        ("filler", "filler"),
        ("FILLER-01", "FILLER-01"),  # machine ids are case-sensitive: kept as written
        ("Line 1", "Line_1"),
        ('"DB_Mixer"', "DB_Mixer"),
        ("_hidden", "hidden"),
        ("4711", "4711"),
        ("Füller", "Fuller"),
        ("°", None),
    ],
)
def test_machine_id(text: str, ident: str | None) -> None:
    assert machine_id(text) == ident


def found(*parts: str) -> Found:
    return Found(parts, (("node", "/".join(parts)),), "")


def test_machine_is_first_part_below_root_else_root_else_placeholder() -> None:
    tags = draft_tags([found("Filler", "State"), found("Filler", "Drive", "Speed"), found("X")])
    assert [(t.machine, t.name) for t in tags] == [
        ("Filler", "state"),
        ("Filler", "drive_speed"),
        (PLACEHOLDER_MACHINE, "x"),
    ]
    tags = draft_tags([found("State"), found("Sub", "State")], root_name="Mixer 2")
    assert [(t.machine, t.name) for t in tags] == [("Mixer_2", "state"), ("Sub", "state")]
    tags = draft_tags([found("State"), found("Sub", "State")], machine="m1")
    assert [(t.machine, t.name) for t in tags] == [("m1", "state"), ("m1", "sub_state")]


def test_names_are_unique_per_machine_whatever_their_case() -> None:
    tags = draft_tags(
        [found("M", "Temp"), found("M", "TEMP"), found("M", "temp"), found("N", "temp")]
    )
    assert [(t.machine, t.name) for t in tags] == [
        ("M", "temp"),
        ("M", "temp_2"),
        ("M", "temp_3"),
        ("N", "temp"),
    ]
    long = draft_tags([found("M", "y" * 70), found("M", "y" * 70)])
    assert [t.name for t in long] == ["y" * 63, "y" * 61 + "_2"]


@pytest.mark.parametrize(
    "text",
    [
        "filler",
        "ns=2;s=filler.state",
        "on",
        "NO",
        "4711",
        "010",
        "1e3",
        "null",
        "plant/+/x",
        "a #b",
        "x: y",
        "a,b}",
        "line\nbreak",
        "sep\u2028arator",
        "nel\x85",
        "bom\ufeff",
        "Füllstand 😀",
        "'quoted'",
        '"double"',
        "back\\slash",
    ],
)
def test_yaml_scalar_reads_back_as_the_same_text_on_one_line(text: str) -> None:
    for quote in (False, True):
        scalar = yaml_scalar(text, quote=quote)
        assert "\n" not in scalar and "\u2028" not in scalar and "\x85" not in scalar
        assert yaml.safe_load(f"{{k: {scalar}}}") == {"k": text}


def test_yaml_scalar_is_plain_only_where_yaml_keeps_it_text() -> None:
    assert yaml_scalar("filler") == "filler"
    assert yaml_scalar("plant/line1/x") == "plant/line1/x"
    assert yaml_scalar("4711") == '"4711"'
    assert yaml_scalar("on") == '"on"'
    assert yaml_scalar("ns=2;s=x", quote=True) == '"ns=2;s=x"'


def test_comment_keeps_to_its_line() -> None:
    assert comment("a\nb\u2028c\x85d") == "a\\nb\\u2028c\\x85d"
    assert comment("Füllstand °C") == "Füllstand °C"


def test_rendered_block_is_the_config_loaders_yaml() -> None:
    tags = draft_tags(
        [
            Found(("M1", "State"), (("node", "ns=2;s=M1.State"),), "Int32  /0:Objects/2:M1"),
            Found(("M1", "on"), (("node", "ns=2;s=a #b\nc"),), "odd\nnote"),
        ]
    )
    text = render_tags(tags, ["first line", "second\nline"], quoted_key="node")
    assert text.splitlines()[-2:] == [
        '  - {machine: M1, name: state, signal: measurement, node: "ns=2;s=M1.State"}'
        "  # Int32  /0:Objects/2:M1",
        '  - {machine: M1, name: "on", signal: measurement, node: "ns=2;s=a #b\\nc"}  # odd\\nnote',
    ]
    assert text.startswith("# first line\n# second\\nline\n# signal: measurement unless")
    data = read_document(text, "draft.yaml").data
    assert data == {
        "tags": [
            {"machine": "M1", "name": "state", "signal": "measurement", "node": "ns=2;s=M1.State"},
            {"machine": "M1", "name": "on", "signal": "measurement", "node": "ns=2;s=a #b\nc"},
        ]
    }
