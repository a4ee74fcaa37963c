"""Config loading: every problem reported with its key path and line; env references; overrides."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from config import DEMO_CONFIG, ConfigError, load_config, parse_config
from tests.services import run_shopfloor

MINIMAL = """\
lines:
  - id: line1
    machines:
      - id: m1
        ideal_cycle_s: 1.0
        state_map: {1: running, 3: down}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: m1, name: state, signal: state, address: 0}
"""


def problems_of(text: str, env: dict[str, str] | None = None) -> list[tuple[str, str, int | None]]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), env=env or {})
    return [(p.path, p.message, p.line) for p in info.value.problems]


def test_demo_config_loads() -> None:
    cfg = load_config(DEMO_CONFIG)
    assert [m.id for m in cfg.lines[0].machines] == ["filler", "capper", "labeler", "packer"]
    assert {s.protocol for s in cfg.sources} == {"opcua", "modbus", "mqtt"}
    assert cfg.lines[0].constraint == "filler"
    assert cfg.lines[0].outputs == ["packer"]


def test_minimal_config_defaults() -> None:
    cfg = parse_config(MINIMAL, env={})
    assert cfg.settings.api.host == "127.0.0.1"
    assert cfg.settings.kpi.max_gap_s == 60
    assert cfg.lines[0].constraint == "m1"


# Each case: a broken edit of MINIMAL and the (path, message fragment, line) it must report.
BROKEN = [
    pytest.param(
        ("ideal_cycle_s: 1.0", "ideal_cycle_s: 0"),
        ("lines[0].machines[0].ideal_cycle_s", "must be at least 0.0001 s and at most 604800 s", 5),
        id="cycle-zero",
    ),
    pytest.param(
        ("ideal_cycle_s: 1.0", "ideal_cycle_s: 1.0\n        colour: red"),
        ("lines[0].machines[0].colour", "unknown key", 6),
        id="unknown-key",
    ),
    pytest.param(
        ("{1: running, 3: down}", "{1: running, 3: broken}"),
        ("lines[0].machines[0].state_map.3", "'running', 'down'", 6),
        id="bad-class",
    ),
    pytest.param(
        ("    host: 127.0.0.1\n", ""),
        ("sources[0].host", "required key is missing", 8),
        id="missing-host",
    ),
    pytest.param(
        ("protocol: modbus", "protocol: profinet"),
        ("sources[0].protocol", "'profinet' is not one of 'opcua', 'modbus', 'mqtt'", 9),
        id="bad-protocol",
    ),
    pytest.param(
        ("address: 0}", "address: 70000}"),
        (
            "sources[0].tags[0].address",
            "70000 is out of range: must be at least 0 and at most 65535",
            12,
        ),
        id="address-range",
    ),
    pytest.param(
        ("machine: m1, name: state", "machine: m9, name: state"),
        ("sources[0].tags[0].machine", "no machine 'm9'", 12),
        id="unknown-machine",
    ),
    pytest.param(
        ("- id: line1", "- id: Line 1"), ("lines[0].id", "should match pattern", 2), id="bad-id"
    ),
    pytest.param(
        ("signal: state, address: 0", "signal: state, wrap: 65536, address: 0"),
        ("sources[0].tags[0]", "only to count signals", 12),
        id="wrap-on-state",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), BROKEN)
def test_broken_config_names_key_path_and_line(
    edit: tuple[str, str], expected: tuple[str, str, int]
) -> None:
    old, new = edit
    assert old in MINIMAL
    found = problems_of(MINIMAL.replace(old, new, 1))
    path, fragment, line = expected
    matches = [p for p in found if p[0] == path and fragment in p[1]]
    assert matches, f"expected {path}: …{fragment}… in {found}"
    assert matches[0][2] == line


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = MINIMAL.replace("ideal_cycle_s: 1.0", "ideal_cycle_s: -1").replace(
        "host: 127.0.0.1", "host: 127.0.0.1\n    port: 0"
    )
    paths = {p[0] for p in problems_of(text)}
    assert {"lines[0].machines[0].ideal_cycle_s", "sources[0].port"} <= paths


def test_reference_problems_cover_every_section() -> None:
    text = MINIMAL.replace(
        "  - id: line1\n", "  - id: line1\n    calendar: nope\n    constraint_machine: m1\n"
    )
    text += "      - {machine: m1, name: state, signal: state, address: 1}\n"
    found = problems_of(text)
    assert ("lines[0].calendar", "no calendar named 'nope'", 3) in found
    assert any(
        p[0] == "sources[0].tags[1]" and "already defined at sources[0].tags[0]" in p[1]
        for p in found
    )


def test_duplicate_yaml_key_is_an_error() -> None:
    text = MINIMAL.replace("ideal_cycle_s: 1.0", "ideal_cycle_s: 1.0\n        ideal_cycle_s: 2.0")
    assert ("lines[0].machines[0].ideal_cycle_s", "duplicate key", 6) in problems_of(text)


def test_yaml_syntax_error_has_a_line() -> None:
    found = problems_of("lines:\n  - id: [unclosed\n")
    assert found[0][0] == "" and "YAML syntax" in found[0][1] and found[0][2] is not None


def test_env_references_and_missing_variable() -> None:
    text = MINIMAL + "settings:\n  database:\n    url: postgresql://u:${DB_PASS}@db/x\n"
    cfg = parse_config(text, env={"DB_PASS": "s3cret"})
    assert cfg.settings.database.url is not None
    assert cfg.settings.database.url.get_secret_value() == "postgresql://u:s3cret@db/x"
    assert "s3cret" not in repr(cfg.settings)  # secrets stay out of logs
    assert ("settings.database.url", "environment variable DB_PASS is not set", 15) in problems_of(
        text
    )


def test_shopfloor_env_overrides_settings() -> None:
    env = {
        "SHOPFLOOR_DATABASE_URL": "postgresql://x@h/db",
        "SHOPFLOOR_API_PORT": "9090",
        "SHOPFLOOR_API_KEYS": "k" * 20 + ",  " + "z" * 20,
    }
    cfg = parse_config(MINIMAL, env=env)
    assert cfg.settings.database.url is not None
    assert cfg.settings.database.url.get_secret_value() == "postgresql://x@h/db"
    assert cfg.settings.api.port == 9090
    assert [k.get_secret_value() for k in cfg.settings.api.api_keys] == ["k" * 20, "z" * 20]
    bad_port = problems_of(MINIMAL, env={"SHOPFLOOR_API_PORT": "x"})
    assert [(p, m) for p, m, _ in bad_port] == [
        (
            "settings.api.port",
            "Input should be a valid integer, unable to parse string as an integer",
        )
    ]


def test_only_settings_variables_override_and_by_their_exact_names() -> None:
    env = {
        "SHOPFLOOR_KPI_MAX_GAP_S": "90",
        "SHOPFLOOR_API": '{"port": 1}',  # a section alone is no setting
        "SHOPFLOOR_API_API_KEYS": "k" * 20,  # the key is SHOPFLOOR_API_KEYS
        "shopfloor_api_port": "1",  # upper case only
        "SHOPFLOOR_OPCUA_PASSWORD": "pw",  # the browse command's, not a setting
    }
    cfg = parse_config(MINIMAL, env=env)
    assert cfg.settings.kpi.max_gap_s == 90
    assert (cfg.settings.api.port, cfg.settings.api.api_keys) == (8080, [])


def test_shift_times_and_timezone() -> None:
    text = MINIMAL + textwrap.dedent("""\
        calendars:
          main:
            timezone: Mars/Olympus
            shifts:
              - {name: night, start: "22:00", end: "06:00"}
        """)
    found = problems_of(text)
    assert any(p[0] == "calendars.main.timezone" and "unknown time zone" in p[1] for p in found)
    cfg = parse_config(text.replace("Mars/Olympus", "Europe/Berlin"), env={})
    assert cfg.calendars["main"].shifts[0].duration.total_seconds() == 8 * 3600


def test_check_cli_lists_each_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        MINIMAL.replace("ideal_cycle_s: 1.0", "ideal_cycle_s: 0").replace(
            "address: 0}", "address: 0, colour: red}"
        )
    )
    proc = run_shopfloor("check", str(bad))
    assert proc.returncode == 1
    assert (
        "lines[0].machines[0].ideal_cycle_s (line 5): 0 is out of range: must be at least "
        "0.0001 s and at most 604800 s" in proc.stderr
    )
    assert "sources[0].tags[0].colour (line 12): unknown key" in proc.stderr
    bad_node = tmp_path / "node.yaml"
    bad_node.write_text(
        DEMO_CONFIG.read_text().replace(
            'node: "ns=2;s=filler.speed"', 'node: "ns=x;s=filler.speed"'
        )
    )
    proc = run_shopfloor("check", str(bad_node))
    assert proc.returncode == 1
    assert "sources[0].tags[5].node (line 77): namespace index" in proc.stderr
    ok = run_shopfloor("check", str(DEMO_CONFIG))
    assert ok.returncode == 0, ok.stderr
    assert "OK (1 line(s), 4 machine(s)" in ok.stdout


def test_simulation_section_references_are_checked() -> None:
    text = MINIMAL + textwrap.dedent("""\
        stop_reasons:
          - {code: 101, text: jam, category: failure}
        simulation:
          machines:
            m9: {}
            m1: {failure_reasons: [101, 999]}
        """)
    found = problems_of(text)
    assert ("simulation.machines.m9", "no machine 'm9' in any line", 17) in found
    assert ("simulation.machines.m1.failure_reasons", "no stop reason with code 999", 18) in found


SHARED_ADDRESSES = """
lines:
  - id: l1
    machines:
      - {id: m1, ideal_cycle_s: 1, state_map: {1: running}}
      - {id: m2, ideal_cycle_s: 1, state_map: {1: running}}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: m1, name: state, signal: state, address: 0}
      - {machine: m2, name: upstream_state, address: 0}
      - {machine: m1, name: total, signal: total_count, address: 2, type: uint32}
      - {machine: m2, name: total, signal: total_count, address: 2, type: uint32}
  - name: ua
    protocol: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    tags:
      - {machine: m1, name: speed, node: "ns=2;s=line1.speed", deadband_type: absolute,
         deadband_value: 0.5}
      - {machine: m2, name: feed_speed, node: "ns=2;s=line1.speed", deadband_type: absolute,
         deadband_value: 0.5}
  - name: gw
    protocol: mqtt
    host: 127.0.0.1
    tags:
      - {machine: m1, name: good, signal: good_count, topic: line1/count, field: good}
      - {machine: m2, name: good, signal: good_count, topic: line1/count, field: good}
"""


def test_check_accepts_tags_that_share_an_address(tmp_path: Path) -> None:
    """Issue 14: two tags on one register, node or topic and field are legitimate; tags on one
    address are read once, so `check` names those that would read it differently."""
    ok = tmp_path / "shared.yaml"
    ok.write_text(SHARED_ADDRESSES)
    proc = run_shopfloor("check", str(ok))
    assert proc.returncode == 0, proc.stderr
    assert "OK (1 line(s), 2 machine(s)" in proc.stdout
    bad = tmp_path / "differ.yaml"
    bad.write_text(
        SHARED_ADDRESSES.replace("0.5}\n  - name: gw", "2}\n  - name: gw").replace(
            "{machine: m2, name: good, signal: good_count, topic: line1/count, field: good}",
            "{machine: m2, name: good, signal: good_count, topic: line1/count, field: good, "
            "timestamp_field: ts}",
        )
    )
    proc = run_shopfloor("check", str(bad))
    assert proc.returncode == 1
    assert (
        "sources[1].tags[1].deadband_value (line 23): the tag at sources[1].tags[0] reads the "
        "same address 'ns=2;s=line1.speed'; tags on one address are read once, so they need "
        "the same deadband_value" in proc.stderr
    ), proc.stderr
    assert "sources[2].tags[1].timestamp_field (line 29): the tag at sources[2].tags[0]" in (
        proc.stderr
    ), proc.stderr
