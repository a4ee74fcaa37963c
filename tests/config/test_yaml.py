"""Hostile YAML files: each is one `ConfigError` with its line, never a traceback or a blow-up.

Bombs are bounded by counting, not by time: the tests assert the bound that refused them and
the memory Python allocated while refusing (tracemalloc), never a duration.
"""

from __future__ import annotations

import codecs
import tracemalloc
from pathlib import Path

import pytest

from config import ConfigError, load_config, parse_config
from config.document import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from tests.services import run_shopfloor

VALID = """\
lines:
  - id: line1
    machines:
      - {id: m1, ideal_cycle_s: 1.0, state_map: {1: running, 3: down}}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: m1, name: state, signal: state, address: 0}
"""

# "Billion laughs": nine aliases of the line before on each line, 10^9 values in 1 KB.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def only_problem(source: str | bytes) -> tuple[str, str, int | None]:
    with pytest.raises(ConfigError) as info:
        parse_config(source, env={})
    assert len(info.value.problems) == 1, info.value.problems
    p = info.value.problems[0]
    return p.path, p.message, p.line


def test_billion_laughs_is_refused_at_the_alias_that_crosses_the_bound() -> None:
    assert len(BOMB) < 1024
    tracemalloc.start()
    try:
        path, message, line = only_problem(BOMB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path == ""
    assert f"beyond {MAX_NODES:,}" in message and "billion laughs" in message
    # The oracle: line i + 1 holds the key and list of anchor i, the lists of nine aliases of
    # anchor i - 1; the first line whose running total passes the bound holds the alias.
    sizes = [10]
    for _ in range(8):
        sizes.append(1 + 9 * sizes[-1])
    total, crossing = 1, 0
    while total + 1 + sizes[crossing] <= MAX_NODES:
        total += 1 + sizes[crossing]
        crossing += 1
    alias = chr(96 + crossing)
    assert message.startswith(f"alias *{alias} stands for a copy of {sizes[crossing - 1]:,} values")
    assert line == crossing + 1
    assert peak < 5 * 2**20, f"{peak / 2**20:.1f} MiB allocated to refuse a 1 KB file"


def test_merge_key_bomb_is_refused_too() -> None:
    rows = ["a: &a {x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7, s: 8, r: 9, q: 10}"]
    for i in range(1, 8):
        prev, name = chr(96 + i), chr(97 + i)
        rows.append(f"{name}: &{name} [" + ", ".join(f"{{<<: *{prev}}}" for _ in range(10)) + "]")
    _, message, line = only_problem("\n".join(rows) + "\n")
    assert "takes the document beyond" in message and line is not None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: &a [*a]\n", 1),
        ("a: &a {b: *a}\n", 1),
        ("x: 1\na: &a\n  b:\n    c: [1, *a]\n", 4),
        ("a: &a {<<: *a}\n", 1),
    ],
    ids=["list", "mapping", "nested", "merge"],
)
def test_recursive_alias_is_refused_at_its_line(text: str, line: int) -> None:
    assert only_problem(text)[1:] == (
        "alias *a is inside the node &a it names: an endless structure",
        line,
    )


DRY = """\
lines:
  - id: line1
    machines:
      - {id: m1, ideal_cycle_s: 1.0, state_map: &map {1: running, 3: down}}
      - {id: m2, ideal_cycle_s: 1.0, state_map: *map}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: m1, name: state, signal: state, address: 0}
      - &temp {machine: m1, name: t1, unit: degC, address: 1}
      - {<<: *temp, name: t2, address: 2}
      - {<<: *temp, machine: m2, name: t3, address: 3, unit: bar}
"""


def test_anchors_aliases_and_merge_keys_stay_usable() -> None:
    cfg = parse_config(DRY, env={})
    assert [(t.machine, t.name, t.unit, t.address) for _, t in cfg.tags()][1:] == [
        ("m1", "t1", "degC", 1),
        ("m1", "t2", "degC", 2),
        ("m2", "t3", "bar", 3),
    ]
    assert cfg.lines[0].machines[1].state_map == {1: "running", 3: "down"}


def test_a_problem_in_an_aliased_node_points_at_each_use() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(DRY.replace("3: down}}", "3: broken}}"), env={})
    assert {(p.path, p.line) for p in info.value.problems} == {
        ("lines[0].machines[0].state_map.3", 4),  # the anchor
        ("lines[0].machines[1].state_map.3", 5),  # the alias
    }


def test_many_aliases_of_a_small_node_are_fine() -> None:
    machines = "".join(
        f"      - {{id: m{i}, ideal_cycle_s: 1.0, state_map: *map}}\n" for i in range(2, 2000)
    )
    cfg = parse_config(
        DRY.replace("      - {id: m2, ideal_cycle_s: 1.0, state_map: *map}\n", machines), env={}
    )
    assert len(cfg.lines[0].machines) == 1999


def test_non_utf8_bytes_are_reported_at_their_line_and_column() -> None:
    data = VALID.replace("id: m1,", "id: m1, name: Füller,").encode("latin-1")
    _, message, line = only_problem(data)
    assert line == 4
    assert message.startswith("the file is not UTF-8 text: column 25 holds the byte(s) fc")


def test_non_utf8_file_through_load_config(tmp_path: Path) -> None:
    file = tmp_path / "plant.yaml"
    file.write_bytes(b"lines:\n  - id: line1\n    name: Abf\xfcllung\n")
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    assert [(p.path, p.line) for p in info.value.problems] == [("", 3)]
    assert "not UTF-8" in info.value.problems[0].message


@pytest.mark.parametrize(
    "encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]
)
def test_yaml_encodings_are_read(encoding: str) -> None:
    cfg = parse_config(VALID.replace("id: m1,", "id: m1, name: Füller,").encode(encoding), env={})
    assert cfg.lines[0].machines[0].name == "Füller"


def test_bad_utf16_is_reported_at_its_line() -> None:
    data = (
        codecs.BOM_UTF16_LE + VALID.encode("utf-16-le") + "\nx: ".encode("utf-16-le") + b"\x00\xdc"
    )
    _, message, line = only_problem(data)
    assert message.startswith("the file is not UTF-16-LE text") and line == 12


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (VALID.replace("host: 127.0.0.1", "host: 127.0.0.1\x00"), 8, "U+0000"),
        (VALID + "x: \x07\n", 11, "U+0007"),
        (VALID + "x: \ud800\n", 11, "U+D800"),
    ],
    ids=["nul", "bell", "lone-surrogate"],
)
def test_forbidden_characters_are_reported_at_their_line(
    text: str, line: int, fragment: str
) -> None:
    _, message, found = only_problem(text)
    assert fragment in message and found == line


def test_nul_byte_in_a_file(tmp_path: Path) -> None:
    file = tmp_path / "plant.yaml"
    file.write_bytes(VALID.encode().replace(b"name: plc", b"name: p\x00lc"))
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    problem = info.value.problems[0]
    assert (problem.line, "U+0000" in problem.message) == (6, True)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",
        "a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(MAX_DEPTH + 5)) + "  1\n",
        "a:\n  " + "- " * (MAX_DEPTH + 1) + "1\n",
    ],
    ids=["flow", "block", "sequence"],
)
def test_deep_nesting_is_refused_with_a_line(text: str) -> None:
    _, message, line = only_problem(text)
    assert message == f"nesting deeper than {MAX_DEPTH} levels" and line is not None


def test_deep_nesting_through_an_alias_is_refused_at_the_alias() -> None:
    half = MAX_DEPTH // 2 + 2
    text = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    assert only_problem(text)[1:] == (f"alias *a nests deeper than {MAX_DEPTH} levels", 2)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "the file is empty; a config holds at least lines:"),
        ("# only a comment\n\n", "the file is empty; a config holds at least lines:"),
        (b"", "the file is empty; a config holds at least lines:"),
        ("- id: line1\n- id: line2\n", "the file holds a list; a config is a mapping"),
        ("just text\n", "the file holds a single value; a config is a mapping"),
        ("--- !!set {a, b}\n", "the file holds a set; a config is a mapping"),
    ],
    ids=["empty", "comment", "no-bytes", "list", "scalar", "set"],
)
def test_a_file_that_is_not_a_mapping(source: str | bytes, message: str) -> None:
    assert only_problem(source)[1].startswith(message)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (VALID + "simulation: {start: 2026-13-45}\n", 11, "'2026-13-45' is not a valid timestamp"),
        (VALID + "x: !!int abc\n", 11, "'abc' is not a valid int"),
        (VALID + "x: !!python/object:os.system ls\n", 11, "could not determine a constructor"),
        (VALID + "x: *nowhere\n", 11, "alias *nowhere has no anchor &nowhere before it"),
        (VALID + "---\nx: 1\n", 11, "expected a single document"),
        (VALID + "? [a, b]\n: 1\n", 11, "found unhashable key"),
        (VALID + "x: " + "9" * 5000 + "\n", 11, "is not a valid int"),
        (VALID + "x: [unclosed\n", 12, "YAML syntax"),
    ],
    ids=[
        "bad-date",
        "bad-int-tag",
        "python-tag",
        "undefined-alias",
        "two-docs",
        "list-key",
        "huge-int",
        "syntax",
    ],
)
def test_yaml_level_problems_have_a_line(text: str, line: int, fragment: str) -> None:
    _, message, found = only_problem(text)
    assert fragment in message and found == line


def test_a_file_over_the_size_limit_is_not_read_whole(tmp_path: Path) -> None:
    file = tmp_path / "huge.yaml"
    with file.open("wb") as f:
        f.write(VALID.encode())
        f.write(b"#" * MAX_FILE_BYTES)
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    assert (
        info.value.problems[0].message == f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB"
    )


def test_a_directory_is_a_read_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert info.value.problems[0].message.startswith("cannot read: ")


def test_garbage_values_are_listed_up_to_a_cap() -> None:
    from config.loader import MAX_PROBLEMS

    with pytest.raises(ConfigError) as info:
        parse_config("lines: [" + ", ".join(["1"] * 5000) + "]\n", env={})
    found = info.value.problems
    assert len(found) == MAX_PROBLEMS + 1
    assert found[0].path == "lines[0]" and found[-1].message == "… and 4,800 more problem(s)"


def test_check_cli_refuses_a_bomb_with_its_line(tmp_path: Path) -> None:
    file = tmp_path / "bomb.yaml"
    file.write_text(BOMB)
    proc = run_shopfloor("check", str(file))
    assert proc.returncode == 1
    assert "(top level) (line " in proc.stderr and "billion laughs" in proc.stderr
    assert "Traceback" not in proc.stderr
