"""Schemathesis against the real API, served beside a running collector (issue 11, "Must show").

`shopfloor run` in a thread of its own (collector over a real Mosquitto and the API over a real
socket) on a database holding the test plant's readings, and an API-only server with API keys on
the same database. Every operation of each OpenAPI document is fuzzed, seeded and bounded
(examples, coverage and fuzzing phases; positive and negative data): no answer is a 5xx, and every
answer is what the document declares (status, content type, schema). Afterwards the collector
still stores a good MQTT message, and /healthz says ok with nothing failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.hooks import HookContext
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from collector.runner import run_services
from config import ShopfloorConfig, parse_config
from localenv.cluster import LocalCluster
from storage.migrate import migrate
from storage.plant_sync import sync_plant
from tests.api.conftest import write_readings
from tests.api.plant import KEY, PLANT, t
from tests.services import Mosquitto, Publisher, eventually, free_port

SEED = 20261202
EXAMPLES = 30  # per operation in the fuzzing phase; the coverage phase adds its own cases
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def fuzz_config(broker: int, port: int, root: str, *, keys: bool) -> ShopfloorConfig:
    """The API test plant, its tags fed over MQTT (topic per tag, JSON {"ts", "v"})."""
    doc = yaml.safe_load(PLANT)
    tags = [
        {k: v for k, v in tag.items() if k != "address"}
        | {"topic": f"{root}/{tag['machine']}/{tag['name']}", "field": "v", "timestamp_field": "ts"}
        for tag in doc["sources"][0]["tags"]
    ]
    doc["sources"] = [
        {
            "name": "gw",
            "protocol": "mqtt",
            "host": "127.0.0.1",
            "port": broker,
            "client_id": f"shopfloor-{root}",
            "tags": tags,
        }
    ]
    api: dict[str, object] = {"port": port}
    if keys:
        api["api_keys"] = [KEY]
    doc["settings"] = {"api": api, "collector": {"batch_age_ms": 20}}
    return parse_config(yaml.safe_dump(doc, sort_keys=False))


@dataclass
class Services:
    url: str  # the database
    root: str  # MQTT topic root
    open_api: str
    keyed_api: str


@contextlib.contextmanager
def running(open_cfg: ShopfloorConfig, keyed_cfg: ShopfloorConfig, url: str, spool: Path):
    """Collector + API, and an API with keys, in a thread with its own event loop (the fuzzing
    is synchronous): stopped as `shopfloor run` stops on SIGTERM."""
    started = threading.Event()
    failed: list[BaseException] = []
    box: dict[str, object] = {}

    async def main() -> None:
        stop, ready, ready_keyed = asyncio.Event(), asyncio.Event(), asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        both = asyncio.gather(
            run_services(
                open_cfg, url, collect=True, serve=True, spool_dir=spool, stop=stop, ready=ready
            ),
            run_services(keyed_cfg, url, collect=False, serve=True, stop=stop, ready=ready_keyed),
        )
        waiting = asyncio.gather(ready.wait(), ready_keyed.wait())
        await asyncio.wait([both, waiting], return_when=asyncio.FIRST_COMPLETED)
        started.set()
        await both

    def thread() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the fixture
            failed.append(exc)
            started.set()

    runner = threading.Thread(target=thread, name="shopfloor run", daemon=True)
    runner.start()
    assert started.wait(60), "the services did not start"
    assert not failed, failed
    try:
        yield
    finally:
        loop, stop = box["loop"], box["stop"]
        loop.call_soon_threadsafe(stop.set)  # type: ignore[attr-defined]
        runner.join(30)
        assert not runner.is_alive(), "the services did not stop"
        assert not failed, failed


@pytest.fixture(scope="module")
def services(
    mosquitto: Mosquitto, pg_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    base = pg_cluster.url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    root = f"fuzz-{uuid.uuid4().hex[:8]}"
    open_port, keyed_port = free_port(), free_port()
    open_cfg = fuzz_config(mosquitto.port, open_port, root, keys=False)
    keyed_cfg = fuzz_config(mosquitto.port, keyed_port, root, keys=True)
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
            sync_plant(conn, open_cfg, now=t("00:00"))
            conn.commit()
        asyncio.run(write_readings(url))
        with running(open_cfg, keyed_cfg, url, tmp_path_factory.mktemp("spool")):
            yield Services(
                url, root, f"http://127.0.0.1:{open_port}", f"http://127.0.0.1:{keyed_port}"
            )
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _schema(keys: bool) -> tuple[dict, schemathesis.schemas.BaseSchema]:
    """The OpenAPI document of the app the fixture serves (same code and config; pytest
    collects the operations before any server runs), and schemathesis over it."""
    cfg = fuzz_config(1883, 8080, "collect", keys=keys)
    spec = create_app(cfg, database_url="postgresql://unused").openapi()
    config = SchemathesisConfig.from_dict({"seed": SEED, "generation": {"mode": "all"}})
    return spec, schemathesis.openapi.from_dict(spec, config=config)


OPEN_SPEC, open_api = _schema(keys=False)
KEYED_SPEC, keyed_api = _schema(keys=True)

# Mixed into what schemathesis generates, so that cases reach past the id checks and the
# window checks into the engine: the plant's real ids, and windows around its readings (and
# at the edges of the span the product handles).
REAL_IDS = {
    "line": ["la", "lb", "ld", "le", "lx"],
    "machine": ["ma", "mb", "m1", "m2", "filler", "capper", "packer", "mx"],
    "tag": [("ma", "temp"), ("ma", "state"), ("mb", "good"), ("m2", "reject")],
}
ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(dt.timedelta(hours=-5))]
SPANS = [dt.timedelta(seconds=s) for s in (1, 59, 3600, 8 * 3600, 86400, 3 * 86400)]
EDGES = [
    ("1900-01-01T00:00:00Z", "1900-01-02T00:00:00Z"),
    ("2199-12-31T00:00:00Z", "2199-12-31T23:59:59Z"),
    ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
    ("9999-12-30T00:00:00Z", "9999-12-31T00:00:00Z"),
]


def _window(start: dt.datetime, span: dt.timedelta) -> dict[str, str]:
    return {"start": start.isoformat(), "end": (start + span).isoformat()}


WINDOWS = st.one_of(
    st.builds(
        _window,
        st.datetimes(
            min_value=dt.datetime(2026, 3, 1),
            max_value=dt.datetime(2026, 3, 3),
            timezones=st.sampled_from(ZONES),
        ),
        st.sampled_from(SPANS),
    ),
    st.sampled_from([{"start": a, "end": b} for a, b in EDGES]),
)


def _real_ids(context: HookContext, strategy: st.SearchStrategy) -> st.SearchStrategy:
    path = context.operation.path if context.operation else ""
    if "{tag}" in path:
        real = [{"machine": m, "tag": g} for m, g in REAL_IDS["tag"]]
    elif "{line}" in path:
        real = [{"line": x} for x in REAL_IDS["line"]]
    elif "{machine}" in path:
        real = [{"machine": x} for x in REAL_IDS["machine"]]
    else:
        return strategy
    return st.one_of(strategy, st.sampled_from(real))


def _real_windows(context: HookContext, strategy: st.SearchStrategy) -> st.SearchStrategy:
    op = context.operation
    if op is None or not any(p.name == "start" for p in op.query):
        return strategy
    return st.one_of(
        strategy,
        st.tuples(strategy, WINDOWS).map(
            lambda qw: {**qw[0], **qw[1]} if isinstance(qw[0], dict) else qw[0]
        ),
    )


for _api in (open_api, keyed_api):
    _api.hook("before_generate_path_parameters")(_real_ids)
    _api.hook("before_generate_query")(_real_windows)


def test_the_fuzzed_documents_are_the_served_ones(services: Services) -> None:
    for base, spec in ((services.open_api, OPEN_SPEC), (services.keyed_api, KEYED_SPEC)):
        assert requests.get(f"{base}/openapi.json", timeout=10).json() == spec


@open_api.parametrize()
@FUZZ
def test_the_api_without_keys(case: schemathesis.Case, services: Services) -> None:
    case.call_and_validate(base_url=services.open_api, checks=CHECKS)


@keyed_api.parametrize()
@FUZZ
def test_the_api_with_a_key(case: schemathesis.Case, services: Services) -> None:
    case.call_and_validate(
        base_url=services.keyed_api, checks=CHECKS, headers={"Authorization": f"Bearer {KEY}"}
    )


async def test_after_the_fuzzing_collection_goes_on(
    services: Services, mosquitto: Mosquitto
) -> None:
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pub = Publisher(mosquitto.port)
    try:
        await pub.publish(
            f"{services.root}/ma/state", json.dumps({"ts": stamp.isoformat(), "v": 2})
        )
    finally:
        pub.close()

    def stored() -> bool:
        with psycopg.connect(services.url) as conn:
            row = conn.execute(
                "SELECT r.value FROM readings r JOIN tags g ON g.id = r.tag_id "
                "WHERE g.machine_id = 'ma' AND g.name = 'state' AND r.time = %s",
                (stamp,),
            ).fetchone()
        return row is not None and row[0] == 2.0

    await eventually(stored, within=30, what="the good message stored", interval=0.2)
    health = await asyncio.to_thread(requests.get, f"{services.open_api}/healthz", timeout=10)
    body = health.json()
    assert health.status_code == 200, body
    assert body["status"] == "ok" and body["problems"] == [], body
    assert body["sources"][0]["connected"], body
    keyed = await asyncio.to_thread(requests.get, f"{services.keyed_api}/healthz", timeout=10)
    assert keyed.status_code == 200 and keyed.json()["status"] == "ok", keyed.text
