"""Issue 14.6: `shopfloor browse --format yaml` drafts a tags: block. Against the simulators'
OPC UA server, `shopfloor check` accepts it under an opcua source as printed, and a collector run
with it stores readings for every drafted tag. `--root` limits the walk and names the machine."""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from asyncua import Server, ua

from adapters.opcua import browse_cli
from config import load_config, parse_config
from simulators import run_simulators
from tests.adapters.commands import shopfloor
from tests.services import eventually, free_port, services_running

PLANT = """\
lines:
  - id: line1
    machines:
      - {id: filler, ideal_cycle_s: 0.5, state_map: {0: planned_stop, 1: running, 2: idle, 3: down, 4: setup}}
stop_reasons:
  - {code: 101, text: bottle jam, category: failure}
  - {code: 201, text: starved, category: idle}
  - {code: 202, text: blocked, category: idle}
  - {code: 301, text: changeover, category: setup}
  - {code: 401, text: maintenance, category: planned}
"""

# The demo's filler (config/demo.yaml): the simulator serves these nodes under
# /0:Objects/2:filler; browse knows none of this.
SIMULATED = """\
sources:
  - name: filler-plc
    protocol: opcua
    endpoint: {endpoint}
    tags:
      - {{machine: filler, name: state, signal: state, node: "ns=2;s=filler.state"}}
      - {{machine: filler, name: stop_reason, signal: stop_reason, node: "ns=2;s=filler.stop_reason"}}
      - {{machine: filler, name: good_count, signal: good_count, wrap: 65536, node: "ns=2;s=filler.good_count"}}
      - {{machine: filler, name: reject_count, signal: reject_count, wrap: 65536, node: "ns=2;s=filler.reject_count"}}
      - {{machine: filler, name: temperature, unit: degC, node: "ns=2;s=filler.temperature"}}
      - {{machine: filler, name: speed, unit: bpm, node: "ns=2;s=filler.speed"}}
simulation:
  follow_calendar: false
"""
NAMES = ["state", "stop_reason", "good_count", "reject_count", "temperature", "speed"]
TYPES = ["UInt16", "UInt16", "UInt32", "UInt32", "Double", "Double"]
DRAFTED = [
    f'  - {{machine: filler, name: {n}, signal: measurement, node: "ns=2;s=filler.{n}"}}'
    f"  # {t}  /0:Objects/2:filler/2:{n}"
    for n, t in zip(NAMES, TYPES, strict=True)
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "adapters" / "opcua.md"
DOCS_ENDPOINT = "opc.tcp://127.0.0.1:48400/shopfloor/sim"


@pytest.fixture(scope="module")
async def endpoint() -> AsyncIterator[str]:
    url = f"opc.tcp://127.0.0.1:{free_port()}/shopfloor/sim"
    cfg = parse_config(PLANT + SIMULATED.format(endpoint=url))
    async with run_simulators(cfg, speed=60, seed=3):
        yield url


async def test_drafted_block_passes_check_and_the_collector_stores_it(
    endpoint: str, database_url: str, tmp_path: Path
) -> None:
    code, out, err = await shopfloor("browse", endpoint, "--format", "yaml")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"# shopfloor browse {endpoint}: 6 variable(s) below /0:Objects"
    assert lines[lines.index("tags:") + 1 :] == DRAFTED
    # docs/adapters/opcua.md shows this very output (for the demo's port).
    shown = f"$ shopfloor browse {DOCS_ENDPOINT} --format yaml\n" + out.replace(
        endpoint, DOCS_ENDPOINT
    )
    assert f"```\n{shown}```\n" in DOCS.read_text()

    # Pasted under a source as printed: the block indented to the source's keys.
    config = tmp_path / "plant.yaml"
    source = f"sources:\n  - name: filler-plc\n    protocol: opcua\n    endpoint: {endpoint}\n"
    config.write_text(PLANT + source + textwrap.indent(out, "    "))
    code, out, err = await shopfloor("check", str(config))
    assert (code, err) == (0, "")
    assert out == f"{config}: OK (1 line(s), 1 machine(s), 1 source(s), 6 tag(s))\n"

    stored: dict[str, list[float]] = {}
    async with services_running(load_config(config), database_url, tmp_path / "spool", serve=False):

        def every_tag_stored() -> bool:
            stored.clear()
            with psycopg.connect(database_url) as conn:
                for name, value in conn.execute(
                    "SELECT t.name, r.value FROM readings r JOIN tags t ON t.id = r.tag_id "
                    "WHERE t.machine_id = 'filler'"
                ):
                    stored.setdefault(name, []).append(value)
            return len(stored) == len(NAMES)

        await eventually(every_tag_stored, within=30, what=lambda: f"readings of {stored}")
    assert sorted(stored) == sorted(NAMES)
    assert all(math.isfinite(v) for values in stored.values() for v in values)
    assert {v for v in stored["state"]} <= {0.0, 1.0, 2.0, 3.0, 4.0}  # the simulator's states


@pytest.mark.parametrize("root", ["ns=2;s=filler", "/0:Objects/2:filler", "/Objects/2:filler"])
async def test_root_by_node_id_or_browse_path(endpoint: str, root: str) -> None:
    code, out = await browse_in_process(endpoint, "--format", "yaml", "--root", root)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"# shopfloor browse {endpoint}: 6 variable(s) below /0:Objects/2:filler"
    # The variables sit directly in the root: the root names their machine.
    assert lines[lines.index("tags:") + 1 :] == DRAFTED


@pytest.mark.parametrize(
    ("root", "error"),
    [
        ("ns=2;s=nope", "error: root ns=2;s=nope: BadNodeIdUnknown\n"),
        (
            "/0:Objects/2:nope",
            "error: root /0:Objects/2:nope: browse path not found (BadNoMatch)\n",
        ),
        (
            "ns=2;x=1",
            "error: root: not a node id: 'ns=2;x=1' (expected ns=<index>;s=<name>, i=, g=, b=, "
            "nsu=<uri>;s=<name>, or a browse path /0:Objects/2:Name)\n",
        ),
    ],
)
async def test_unknown_root_is_an_error(
    endpoint: str, root: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await browse_in_process(endpoint, "--root", root) == (1, "")
    assert capsys.readouterr().err == error


class NestedPlc:
    """Names a real PLC has: a line folder, machines in it, a nested drive, odd characters, and
    a variable straight in the Objects folder."""

    async def start(self) -> NestedPlc:
        self.endpoint = f"opc.tcp://127.0.0.1:{free_port()}/nested"
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        ns = await server.register_namespace("urn:shopfloor:test:nested")
        objects = server.nodes.objects
        line = await objects.add_object(ua.NodeId("Line1", ns), ua.QualifiedName("Line 1", ns))
        await line.add_variable(ua.NodeId("Line1.Level", ns), ua.QualifiedName("Level", ns), 1.0)
        filler = await line.add_object(
            ua.NodeId("Line1.Filler", ns), ua.QualifiedName('"FillerA"', ns)
        )
        await filler.add_variable(
            ua.NodeId(5001, ns),
            ua.QualifiedName("GoodCount", ns),
            ua.Variant(7, ua.VariantType.UInt32),
        )
        drive = await filler.add_object(
            ua.NodeId("Line1.Filler.Drive", ns), ua.QualifiedName("Drive", ns)
        )
        await drive.add_variable(
            ua.NodeId("Line1.Filler.Drive.Speed", ns), ua.QualifiedName("SpeedPV", ns), 0.5
        )
        await drive.add_variable(
            ua.NodeId("Line1.Filler.Drive.speed", ns), ua.QualifiedName("speed pv", ns), 0.5
        )
        await objects.add_variable(ua.NodeId("Loose", ns), ua.QualifiedName("Loose", ns), True)
        await server.start()
        self.server = server
        return self


@pytest.fixture(scope="module")
async def nested() -> AsyncIterator[NestedPlc]:
    plc = await NestedPlc().start()
    yield plc
    await plc.server.stop()


async def browse_in_process(endpoint: str, *options: str) -> tuple[int, str]:
    """`browse_cli.run` as `shopfloor browse` calls it (exit code, output), in this process."""
    parser = argparse.ArgumentParser(prog="shopfloor browse")
    browse_cli.configure_parser(parser)
    out = io.StringIO()
    # run() starts its own event loop, as the CLI's main() would: call it from a thread.
    code = await asyncio.to_thread(browse_cli.run, parser.parse_args([endpoint, *options]), out)
    return code, out.getvalue()


async def draft(endpoint: str, *options: str) -> list[str]:
    code, out = await browse_in_process(endpoint, "--format", "yaml", *options)
    assert code == 0
    lines = out.splitlines()
    return [line.split("  # ")[0] for line in lines[lines.index("tags:") + 1 :]]


async def test_names_and_machines_from_nested_paths(nested: NestedPlc) -> None:
    entry = '  - {{machine: {}, name: {}, signal: measurement, node: "{}"}}'.format
    assert await draft(nested.endpoint) == [
        entry("TODO", "loose", "ns=2;s=Loose"),  # in the Objects folder: no machine to guess
        entry("Line_1", "level", "ns=2;s=Line1.Level"),
        entry("Line_1", "filler_a_good_count", "ns=2;i=5001"),
        entry("Line_1", "filler_a_drive_speed_pv", "ns=2;s=Line1.Filler.Drive.Speed"),
        entry("Line_1", "filler_a_drive_speed_pv_2", "ns=2;s=Line1.Filler.Drive.speed"),
    ]
    # Rooted at the line: its machines are the objects in it, its own variables its own.
    assert await draft(nested.endpoint, "--root", "ns=2;s=Line1") == [
        entry("Line_1", "level", "ns=2;s=Line1.Level"),
        entry("FillerA", "good_count", "ns=2;i=5001"),
        entry("FillerA", "drive_speed_pv", "ns=2;s=Line1.Filler.Drive.Speed"),
        entry("FillerA", "drive_speed_pv_2", "ns=2;s=Line1.Filler.Drive.speed"),
    ]
    assert await draft(
        nested.endpoint, "--root", '/0:Objects/2:Line 1/2:"FillerA"', "--machine", "F1"
    ) == [
        entry("F1", "good_count", "ns=2;i=5001"),
        entry("F1", "drive_speed_pv", "ns=2;s=Line1.Filler.Drive.Speed"),
        entry("F1", "drive_speed_pv_2", "ns=2;s=Line1.Filler.Drive.speed"),
    ]
    # --max-depth counts levels below the root.
    assert await draft(nested.endpoint, "--root", "ns=2;s=Line1", "--max-depth", "2") == [
        entry("Line_1", "level", "ns=2;s=Line1.Level"),
        entry("FillerA", "good_count", "ns=2;i=5001"),
    ]
