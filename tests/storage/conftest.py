"""Shared by the storage tests: a small plant in a fresh database, and a connection to it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import psycopg
import pytest

from config import ShopfloorConfig, parse_config
from storage.migrate import migrate
from storage.plant_sync import sync_plant

PLANT = """\
stop_reasons:
  - {code: 101, text: jam, category: failure}
  - {code: 201, text: starved, category: idle}
lines:
  - id: line1
    machines:
      - id: m1
        ideal_cycle_s: 1.0
        state_map: {0: planned_stop, 1: running, 2: idle, 3: down}
      - id: m2
        ideal_cycle_s: 2.0
        state_map: {1: running}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: m1, name: state, signal: state, address: 0}
      - {machine: m1, name: reason, signal: stop_reason, address: 1}
      - {machine: m1, name: good, signal: good_count, wrap: 1000, address: 2}
      - {machine: m1, name: reject, signal: reject_count, counter: delta, address: 3}
      - {machine: m1, name: temp, address: 4}
      - {machine: m2, name: state, signal: state, address: 10}
"""

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def plant() -> ShopfloorConfig:
    return parse_config(PLANT, env={})


@pytest.fixture
def plant_url(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        sync_plant(conn, plant())
    return database_url


@pytest.fixture
async def conn(plant_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    c = await psycopg.AsyncConnection.connect(plant_url, autocommit=True)
    yield c
    await c.close()


async def tag_id(conn: psycopg.AsyncConnection, machine: str, name: str) -> int:
    cur = await conn.execute(
        "SELECT id FROM tags WHERE machine_id = %s AND name = %s", (machine, name)
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])
