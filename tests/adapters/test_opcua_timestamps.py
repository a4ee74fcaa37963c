"""`timestamp: collector`: a polled value the server stamped once is still stored per poll."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from adapters.opcua import OpcUaAdapter
from config import parse_config
from config.problems import ConfigError
from tests.adapters.test_opcua_adapter import Collector, PlcServer, Running, make_source
from tests.services import eventually, free_port, services_running

RECIPE = "ns=2;s=line1.recipe"  # written once when the server starts: one SourceTimestamp
RUNNING = "/0:Objects/2:Line1/2:Running"


@pytest.fixture
async def plc() -> AsyncIterator[PlcServer]:
    server = await PlcServer(free_port()).start()
    yield server
    await server.stop()


async def test_polling_stamps_with_the_collector_clock_per_tag(plc: PlcServer) -> None:
    sink = Collector()
    source = make_source(
        plc.endpoint,
        mode="polling",
        poll_interval_s=0.05,
        tags=[
            {"machine": "filler", "name": "recipe", "node": RECIPE},
            {"machine": "filler", "name": "running", "node": RUNNING, "timestamp": "collector"},
        ],
    )
    run = Running(OpcUaAdapter(source, sink))
    before = dt.datetime.now(dt.UTC)
    await sink.wait_for(lambda: len(sink.where(RUNNING)) >= 5, "five polls")
    await run.close()
    after = dt.datetime.now(dt.UTC)

    recipe = [r.ts for r in sink.where(RECIPE)]
    running = [r.ts for r in sink.where(RUNNING)]
    assert len(recipe) == len(running) >= 5  # one Read for both tags per poll
    assert len(set(recipe)) == 1 and recipe[0] < before  # the server's stamp, every time
    assert running == sorted(set(running))  # a new stamp per poll...
    assert before <= running[0] and running[-1] <= after  # ...from the collector's clock


async def test_a_source_wide_collector_timestamp_stores_every_poll(
    plc: PlcServer, database_url: str, tmp_path: Path
) -> None:
    cfg = parse_config(f"""
lines:
  - id: l1
    machines: [{{id: filler, ideal_cycle_s: 1, state_map: {{1: running}}}}]
sources:
  - name: plc
    protocol: opcua
    endpoint: {plc.endpoint}
    mode: polling
    poll_interval_s: 0.05
    timestamp: collector
    tags:
      - {{machine: filler, name: recipe, node: "{RECIPE}"}}
      - {{machine: filler, name: temperature, node: "ns=2;s=line1.temperature", timestamp: source}}
settings:
  collector: {{batch_age_ms: 20}}
""")

    def rows(name: str) -> list[tuple[dt.datetime, float | None, str | None]]:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT r.time, r.value, r.text_value FROM readings r JOIN tags t ON t.id = r.tag_id "
                "WHERE t.name = %s ORDER BY r.time",
                (name,),
            ).fetchall()

    async with services_running(cfg, database_url, tmp_path, serve=False):
        await eventually(lambda: len(rows("recipe")) >= 5, within=30, what="five recipe rows")
    recipe = rows("recipe")
    assert {text for _, _, text in recipe} == {"cola"}
    assert len({t for t, _, _ in recipe}) == len(recipe)  # a row per poll
    assert [v for _, v, _ in rows("temperature")] == [21.5]  # the server's one stamp: one row


def test_tags_on_one_node_agree_on_the_timestamp() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("""
lines:
  - id: l1
    machines: [{id: filler, ideal_cycle_s: 1, state_map: {1: running}}]
sources:
  - name: plc
    protocol: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    tags:
      - {machine: filler, name: a, node: "ns=2;s=x", timestamp: collector}
      - {machine: filler, name: b, node: "ns=2;s=x"}
""")
    assert "timestamp" in str(err.value)
