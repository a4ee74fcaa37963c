"""Security warnings: where a valid config leaves security off on a network."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from config import DEMO_CONFIG, check_config, parse_config
from tests.services import run_shopfloor

PLANT = """\
lines:
  - id: line1
    machines:
      - {id: m1, ideal_cycle_s: 1.0, state_map: {1: running}}
"""


def warnings_of(sources: str, settings: str = "") -> list[tuple[str, str]]:
    text = PLANT + "sources:\n" + textwrap.indent(textwrap.dedent(sources), "  ") + settings
    return parse_config(text, env={}).security_warnings()


OPCUA = """\
- name: plc
  protocol: opcua
  endpoint: opc.tcp://10.0.0.5:4840
  tags: [{machine: m1, name: state, signal: state, node: "ns=2;s=state"}]
"""
MQTT = """\
- name: gw
  protocol: mqtt
  host: broker.plant.example
  username: shopfloor
  password: hunter2
  tags: [{machine: m1, name: state, signal: state, topic: a/b}]
"""


def test_opcua_policy_none_on_a_network() -> None:
    found = warnings_of(OPCUA)
    assert [p for p, _ in found] == ["sources[0].security.policy"]
    assert "neither signed nor encrypted" in found[0][1] and "10.0.0.5" in found[0][1]


def test_opcua_password_with_policy_none() -> None:
    found = warnings_of(OPCUA.replace("  tags:", "  username: op\n  password: pw\n  tags:"))
    assert [p for p, _ in found] == ["sources[0].security.policy", "sources[0].password"]


def test_mqtt_password_without_tls() -> None:
    found = warnings_of(MQTT)
    assert found == [
        (
            "sources[0].password",
            "sent in clear text to broker.plant.example:1883: the broker connection has no tls",
        )
    ]


def test_mqtt_tls_without_host_name_check() -> None:
    found = warnings_of(MQTT.replace("  tags:", "  tls: {insecure: true}\n  tags:"))
    assert [p for p, _ in found] == ["sources[0].tls.insecure"]


def test_database_without_ssl_to_another_host() -> None:
    settings = (
        "settings:\n  database:\n    url: postgresql://u@db.plant.example/x?sslmode=disable\n"
    )
    found = warnings_of(OPCUA.replace("10.0.0.5", "127.0.0.1"), settings)
    assert [p for p, _ in found] == ["settings.database.url"]
    assert "sslmode=disable to db.plant.example" in found[0][1]


@pytest.mark.parametrize(
    ("sources", "settings"),
    [
        (OPCUA.replace("10.0.0.5", "127.0.0.1"), ""),
        (OPCUA.replace("10.0.0.5", "[::1]"), ""),
        (MQTT.replace("broker.plant.example", "localhost"), ""),
        (MQTT.replace("  tags:", "  tls: {ca_file: /etc/ca.pem}\n  tags:"), ""),
        (
            OPCUA.replace("10.0.0.5", "localhost"),
            "settings:\n  database:\n    url: host=/run/postgresql dbname=x sslmode=disable\n",
        ),
    ],
    ids=["opcua-loopback", "opcua-ipv6-loopback", "mqtt-loopback", "mqtt-tls", "db-socket"],
)
def test_no_warning_where_nothing_crosses_a_network_in_clear(sources: str, settings: str) -> None:
    assert warnings_of(sources, settings) == []


def test_check_config_locates_warnings(tmp_path: Path) -> None:
    file = tmp_path / "plant.yaml"
    file.write_text(PLANT + "sources:\n" + textwrap.indent(MQTT, "  "))
    checked = check_config(file, env={})
    assert [(w.path, w.line) for w in checked.warnings] == [("sources[0].password", 10)]


def test_check_cli_prints_warnings_and_exits_0(tmp_path: Path) -> None:
    file = tmp_path / "plant.yaml"
    file.write_text(PLANT + "sources:\n" + textwrap.indent(OPCUA, "  "))
    proc = run_shopfloor("check", str(file))
    assert proc.returncode == 0, proc.stderr
    assert (
        f"{file}: warning: sources[0].security.policy (line 6): security policy None: traffic "
        "with 10.0.0.5 is neither signed nor encrypted"
    ) in proc.stderr
    assert "OK (1 line(s), 1 machine(s), 1 source(s), 1 tag(s), 1 warning(s))" in proc.stdout


def test_the_demo_has_no_warnings() -> None:
    """Everything in the demo runs on this machine."""
    assert check_config(DEMO_CONFIG, env={}).warnings == []
