"""The OPC UA adapter against a real asyncua server on a loopback port."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapters.base import Quality, Reading
from adapters.opcua import OpcUaAdapter, browse, browse_cli
from adapters.opcua.values import severity
from config.sources.opcua import OpcUaSource
from tests.adapters.shared import RoutedSink, config_with
from tests.services import eventually, free_port

NS_URI = "urn:shopfloor:test:line1"
GUID = uuid.UUID("72962b91-fa75-4ae6-8d28-b404dc7daf63")
DEADLINE_S = 15.0

logging.getLogger("asyncua").setLevel(logging.WARNING)


class Users:
    """asyncua user manager: one user with a password."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username in self.users and self.users[username] == password:
            return User(role=UserRole.User, name=username)
        return None


class PlcServer:
    """A small PLC: a Line1 object with variables in each node id form."""

    def __init__(
        self,
        port: int,
        *,
        certs: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
        policies: Sequence[ua.SecurityPolicyType] = (
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ),
    ) -> None:
        self.policies = list(policies)
        self.port = port
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/shopfloor/test"
        self.certs = certs
        self.users = users
        self.server: Server | None = None
        self.ns = 0

    async def start(self, *, spare_namespaces: int = 0) -> PlcServer:
        server = Server(user_manager=Users(self.users) if self.users else None)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("shopfloor test PLC")
        if self.certs:
            cert, key = self.certs
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            server.set_security_policy(self.policies)
            await server.set_application_uri("urn:shopfloor:test:server")
        if self.users:
            server.set_security_IDs(["Username"])
        # A restarted PLC may number its namespaces differently: spare ones shift ours.
        for i in range(spare_namespaces):
            await server.register_namespace(f"urn:shopfloor:test:spare{i}")
        self.ns = await server.register_namespace(NS_URI)
        ns = self.ns
        line = await server.nodes.objects.add_object(
            ua.NodeId("Line1", ns), ua.QualifiedName("Line1", ns)
        )
        await line.add_variable(
            ua.NodeId("line1.state", ns),
            ua.QualifiedName("State", ns),
            ua.Variant(1, ua.VariantType.Int32),
        )
        await line.add_variable(
            ua.NodeId("line1.temperature", ns), ua.QualifiedName("Temperature", ns), 21.5
        )
        await line.add_variable(
            ua.NodeId("line1.running", ns), ua.QualifiedName("Running", ns), True
        )
        await line.add_variable(
            ua.NodeId("line1.recipe", ns), ua.QualifiedName("Recipe", ns), "cola"
        )
        await line.add_variable(
            ua.NodeId(5001, ns),
            ua.QualifiedName("GoodCount", ns),
            ua.Variant(7, ua.VariantType.UInt32),
        )
        await line.add_variable(
            ua.NodeId(GUID, ns, ua.NodeIdType.Guid),
            ua.QualifiedName("Pressure", ns),
            ua.Variant(1.5, ua.VariantType.Float),
        )
        await line.add_variable(
            ua.NodeId(b"\x01\x02\x03", ns, ua.NodeIdType.ByteString),
            ua.QualifiedName("Level", ns),
            ua.Variant(-3, ua.VariantType.Int16),
        )
        await line.add_variable(ua.NodeId("line1.speed", ns), ua.QualifiedName("Speed", ns), 0.0)
        await server.start()
        self.server = server
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def write(
        self,
        node: str,
        value: Any,
        *,
        variant: ua.VariantType | None = None,
        status: int = ua.StatusCodes.Good,
        source_ts: dt.datetime | None = None,
    ) -> None:
        assert self.server is not None
        nodeid = ua.NodeId.from_string(node.replace("ns=2;", f"ns={self.ns};"))
        dv = ua.DataValue(
            ua.Variant(value, variant) if variant else ua.Variant(value),
            StatusCode=ua.StatusCode(status),
            SourceTimestamp=source_ts or dt.datetime.now(dt.UTC),
            ServerTimestamp=dt.datetime.now(dt.UTC),
        )
        await self.server.write_attribute_value(nodeid, dv)


@pytest.fixture
async def plc() -> AsyncIterator[PlcServer]:
    server = await PlcServer(free_port()).start()
    yield server
    await server.stop()


class Collector:
    def __init__(self) -> None:
        self.readings: list[Reading] = []

    async def __call__(self, batch: Sequence[Reading]) -> None:
        self.readings.extend(batch)

    def where(self, address: str) -> list[Reading]:
        return [r for r in self.readings if r.address == address]

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        await eventually(predicate, DEADLINE_S, lambda: f"{what}; got {self.readings}")


TAGS = [
    {"machine": "filler", "name": "state", "signal": "state", "node": "ns=2;s=line1.state"},
    {
        "machine": "filler",
        "name": "temperature",
        "node": "nsu=urn:shopfloor:test:line1;s=line1.temperature",
        "deadband_type": "absolute",
        "deadband_value": 0.5,
    },
    {"machine": "filler", "name": "running", "node": "/0:Objects/2:Line1/2:Running"},
    {"machine": "filler", "name": "recipe", "node": "ns=2;s=line1.recipe"},
    {"machine": "filler", "name": "good_count", "signal": "good_count", "node": "ns=2;i=5001"},
    {"machine": "filler", "name": "pressure", "node": f"ns=2;g={GUID}"},
    {"machine": "filler", "name": "level", "node": "ns=2;b=AQID"},
    {"machine": "filler", "name": "missing", "node": "ns=2;s=no.such.node"},
]


def make_source(endpoint: str, **options: Any) -> OpcUaSource:
    data: dict[str, Any] = {
        "protocol": "opcua",
        "name": "filler-plc",
        "endpoint": endpoint,
        "publishing_interval_ms": 50,
        "sampling_interval_ms": 20,
        "timeout_s": 2,
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1.0,
        "tags": TAGS,
    }
    data.update(options)
    return OpcUaSource.model_validate(data)


class Running:
    def __init__(self, adapter: OpcUaAdapter) -> None:
        self.adapter = adapter
        self.task = asyncio.create_task(adapter.run())

    async def close(self) -> None:
        assert not self.task.done(), "the adapter task ended by itself"
        await asyncio.wait_for(self.adapter.stop(), 10)
        await asyncio.wait_for(self.task, 10)  # re-raises anything run() raised


def last(sink: Collector, address: str) -> Reading | None:
    got = sink.where(address)
    return got[-1] if got else None


async def test_subscription_values_types_quality_and_timestamps(plc: PlcServer) -> None:
    sink = Collector()
    run = Running(OpcUaAdapter(make_source(plc.endpoint), sink))
    # Initial values of every resolvable form of node id arrive first.
    await sink.wait_for(lambda: len({r.address for r in sink.readings}) >= 7, "initial values")
    by = {r.address: r for r in sink.readings}
    assert by["ns=2;s=line1.state"].value == 1.0
    assert by["nsu=urn:shopfloor:test:line1;s=line1.temperature"].value == 21.5
    assert by["/0:Objects/2:Line1/2:Running"].value == 1.0
    assert (by["ns=2;s=line1.recipe"].value, by["ns=2;s=line1.recipe"].text) == (None, "cola")
    assert by["ns=2;i=5001"].value == 7.0
    assert by["ns=2;g=" + str(GUID)].value == 1.5
    assert by["ns=2;b=AQID"].value == -3.0
    assert all(type(r.value) is float for r in by.values() if r.value is not None)
    assert all(r.quality == Quality.GOOD and r.source == "filler-plc" for r in by.values())
    assert "ns=2;s=no.such.node" not in by
    status = run.adapter.status
    assert status.connected and status.errors >= 1 and "no.such.node" in (status.last_error or "")

    # A source timestamp set by the PLC is kept; a Bad status arrives as bad with no value.
    stamp = dt.datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=dt.UTC)
    await plc.write("ns=2;s=line1.state", 3, variant=ua.VariantType.Int32, source_ts=stamp)
    await sink.wait_for(
        lambda: (r := last(sink, "ns=2;s=line1.state")) is not None and r.value == 3.0, "state 3"
    )
    assert last(sink, "ns=2;s=line1.state").ts == stamp  # type: ignore[union-attr]
    errors = status.errors
    await plc.write(
        "ns=2;s=line1.state",
        3,
        variant=ua.VariantType.Int32,
        status=ua.StatusCodes.BadSensorFailure,
    )
    await sink.wait_for(
        lambda: last(sink, "ns=2;s=line1.state").quality != 0,  # type: ignore[union-attr]
        "a bad reading",
    )
    bad = last(sink, "ns=2;s=line1.state")
    assert bad is not None and bad.value is None and severity(bad.quality) is Quality.BAD
    assert bad.quality == 0x808C - 0x10000  # BadSensorFailure's top 16 bits, as int16
    # counted once and named, as a polled Bad value is
    assert status.errors == errors + 1
    assert status.last_error == "ns=2;s=line1.state: reported BadSensorFailure"
    await plc.write("ns=2;s=line1.state", 4, variant=ua.VariantType.Int32)
    await sink.wait_for(
        lambda: last(sink, "ns=2;s=line1.state").value == 4.0,  # type: ignore[union-attr]
        "good again",
    )

    # Absolute deadband 0.5 on temperature: 21.7 is within it, 23.0 is not.
    temp = "nsu=urn:shopfloor:test:line1;s=line1.temperature"
    await plc.write("ns=2;s=line1.temperature", 21.7)
    await plc.write("ns=2;s=line1.running", False)  # a marker after the 21.7 write
    await sink.wait_for(
        lambda: last(sink, "/0:Objects/2:Line1/2:Running").value == 0.0,  # type: ignore[union-attr]
        "running false",
    )
    await plc.write("ns=2;s=line1.temperature", 23.0)
    await sink.wait_for(lambda: last(sink, temp).value == 23.0, "23.0")  # type: ignore[union-attr]
    assert [r.value for r in sink.where(temp)] == [21.5, 23.0]
    await run.close()


async def test_polling(plc: PlcServer) -> None:
    sink = Collector()
    source = make_source(
        plc.endpoint, mode="polling", poll_interval_s=0.1, timestamp="server", tags=TAGS[:2]
    )
    run = Running(OpcUaAdapter(source, sink))
    await sink.wait_for(lambda: len(sink.where("ns=2;s=line1.state")) >= 2, "two polls")
    await plc.write(
        "ns=2;s=line1.state",
        2,
        variant=ua.VariantType.Int32,
        status=ua.StatusCodes.UncertainLastUsableValue,
    )
    await sink.wait_for(
        lambda: last(sink, "ns=2;s=line1.state").quality != 0,  # type: ignore[union-attr]
        "uncertain",
    )
    r = last(sink, "ns=2;s=line1.state")
    assert r is not None and r.value == 2.0 and severity(r.quality) is Quality.UNCERTAIN
    await plc.write(
        "ns=2;s=line1.state",
        2,
        variant=ua.VariantType.Int32,
        status=ua.StatusCodes.BadCommunicationError,
    )
    await sink.wait_for(
        lambda: (
            severity(last(sink, "ns=2;s=line1.state").quality)  # type: ignore[union-attr]
            is Quality.BAD
        ),
        "bad",
    )
    assert last(sink, "ns=2;s=line1.state").value is None  # type: ignore[union-attr]
    assert run.adapter.status.connected
    # A Bad value is counted once, its status named.
    assert run.adapter.status.errors == 1
    assert run.adapter.status.last_error == (
        "ns=2;s=line1.state: read returned BadCommunicationError"
    )
    await run.close()


async def test_polling_a_node_that_comes_and_goes(
    plc: PlcServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Unknown: one WARNING, counted, no reading. Created: one INFO, read. Deleted: again."""
    caplog.set_level(logging.INFO, logger="adapters.opcua.adapter")
    missing = "ns=2;s=no.such.node"
    sink = Collector()
    source = make_source(
        plc.endpoint, mode="polling", poll_interval_s=0.05, tags=TAGS[:1] + TAGS[-1:]
    )
    run = Running(OpcUaAdapter(source, sink))
    status = run.adapter.status

    def lines(level: int, text: str) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == level and missing in r.getMessage() and text in r.getMessage()
        ]

    def polls_after(n: int) -> Callable[[], bool]:
        return lambda: len(sink.where("ns=2;s=line1.state")) >= n + 5

    await eventually(lambda: status.errors == 1, DEADLINE_S, lambda: f"not counted: {status}")
    await sink.wait_for(polls_after(len(sink.where("ns=2;s=line1.state"))), "more polls")
    assert status.errors == 1 and not sink.where(missing)
    assert lines(logging.WARNING, "BadNodeIdUnknown") == [
        f"filler-plc: tag filler.missing ({missing}): read returned BadNodeIdUnknown"
    ]

    assert plc.server is not None
    node = await plc.server.nodes.objects.add_variable(
        ua.NodeId("no.such.node", plc.ns), ua.QualifiedName("Late", plc.ns), 5.0
    )
    await sink.wait_for(lambda: len(sink.where(missing)) >= 3, "the new node read")
    assert {r.value for r in sink.where(missing)} == {5.0}
    assert lines(logging.INFO, "read again") == [
        f"filler-plc: tag filler.missing ({missing}) read again: Good"
    ]

    await plc.server.delete_nodes([node])
    await eventually(lambda: status.errors == 2, DEADLINE_S, lambda: f"not counted: {status}")
    await sink.wait_for(polls_after(len(sink.where("ns=2;s=line1.state"))), "more polls")
    assert status.errors == 2 and status.connected
    assert len(lines(logging.WARNING, "BadNodeIdUnknown")) == 2  # a new episode, once
    assert len(lines(logging.INFO, "read again")) == 1
    await run.close()


async def test_failed_sink_call_is_retried(plc: PlcServer) -> None:
    """A batch the sink refused is offered again, before anything newer."""
    calls: list[int] = []
    got: list[Reading] = []

    async def flaky(batch: Sequence[Reading]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("database is away")
        got.extend(batch)

    run = Running(OpcUaAdapter(make_source(plc.endpoint, tags=TAGS[:1]), flaky))
    await eventually(
        lambda: bool(got), DEADLINE_S, lambda: f"never delivered: {run.adapter.status}"
    )
    assert got[0].value == 1.0 and len(calls) >= 2
    assert run.adapter.status.errors == 1 and "sink failed" in (run.adapter.status.last_error or "")
    await run.close()


async def test_server_restart(plc: PlcServer) -> None:
    """The restarted server numbers its namespace 3, not 2: nsu= ids are resolved again."""
    state = "nsu=urn:shopfloor:test:line1;s=line1.state"
    tags = [
        {"machine": "filler", "name": "state", "node": state},
        {
            "machine": "filler",
            "name": "speed",
            "node": "nsu=urn:shopfloor:test:line1;s=line1.speed",
        },
    ]
    sink = Collector()
    run = Running(OpcUaAdapter(make_source(plc.endpoint, tags=tags), sink))
    await sink.wait_for(lambda: len(sink.readings) >= 2, "initial values")

    await plc.stop()
    await eventually(
        lambda: not run.adapter.status.connected,
        DEADLINE_S,
        "the adapter never noticed the server went away",
    )
    await asyncio.sleep(0.5)  # a few reconnect attempts fail meanwhile
    errors_while_down = run.adapter.status.errors
    assert errors_while_down >= 1

    await plc.start(spare_namespaces=1)  # same port, a new server: namespace index 3
    assert plc.ns == 3
    await plc.write("ns=2;s=line1.state", 9, variant=ua.VariantType.Int32)
    await sink.wait_for(
        lambda: any(r.value == 9.0 for r in sink.where(state)), "a reading after the restart"
    )
    await sink.wait_for(lambda: run.adapter.status.connected, "connected")
    assert run.adapter.status.reconnects >= 1
    await run.close()


async def _server_certs(directory: Path) -> tuple[Path, Path]:
    """A server certificate for the secured test, generated like a PLC's own."""
    key, cert = directory / "server-key.pem", directory / "server-cert.der"
    await setup_self_signed_certificate(
        key, cert, "urn:shopfloor:test:server", "127.0.0.1", [ExtendedKeyUsageOID.SERVER_AUTH], {}
    )
    return cert, key


async def test_secured_basic256sha256_sign_and_encrypt(tmp_path: Path) -> None:
    cert, key = await _server_certs(tmp_path)
    plc = await PlcServer(free_port(), certs=(cert, key), users={"operator": "s3cret"}).start()
    try:
        client_dir = tmp_path / "client-pki"
        security = {
            "policy": "Basic256Sha256",
            "mode": "SignAndEncrypt",
            "server_certificate": str(cert),
            "certificate_dir": str(client_dir),
        }
        source = make_source(
            plc.endpoint, security=security, username="operator", password="s3cret", tags=TAGS[:2]
        )
        sink = Collector()
        run = Running(OpcUaAdapter(source, sink))
        await sink.wait_for(lambda: len(sink.readings) >= 2, "readings over SignAndEncrypt")
        assert {r.value for r in sink.readings} >= {1.0, 21.5}
        await run.close()
        generated = (client_dir / "cert.der").read_bytes()
        assert (client_dir / "key.pem").exists()

        # The generated certificate is kept: the next start uses the same one.
        sink = Collector()
        run = Running(OpcUaAdapter(source, sink))
        await sink.wait_for(lambda: len(sink.readings) >= 2, "readings again")
        await run.close()
        assert (client_dir / "cert.der").read_bytes() == generated

        # browse fetches the server certificate for the user, then browses the secured server.
        parser = argparse.ArgumentParser(prog="shopfloor browse")
        browse_cli.configure_parser(parser)
        saved = tmp_path / "fetched.der"
        args = [plc.endpoint, "--security-policy", "Basic256Sha256"]
        out = io.StringIO()
        code = await asyncio.to_thread(
            browse_cli.run, parser.parse_args([*args, "--save-server-certificate", str(saved)]), out
        )
        assert code == 0 and saved.read_bytes() == x509_der(cert)
        args += [
            "--server-certificate",
            str(saved),
            "--username",
            "operator",
            "--password",
            "s3cret",
            "--certificate",
            str(client_dir / "cert.der"),
            "--private-key",
            str(client_dir / "key.pem"),
        ]
        code = await asyncio.to_thread(browse_cli.run, parser.parse_args(args), out)
        assert code == 0 and "ns=2;s=line1.state" in out.getvalue()

        # A wrong password never connects; it is counted and retried, not raised.
        wrong = make_source(
            plc.endpoint, security=security, username="operator", password="nope", tags=TAGS[:2]
        )
        run = Running(OpcUaAdapter(wrong, Collector()))
        await eventually(
            lambda: run.adapter.status.errors >= 2, DEADLINE_S, "no error for a wrong password"
        )
        assert not run.adapter.status.connected
        await run.close()
    finally:
        await plc.stop()


@pytest.mark.parametrize(
    ("policy", "mode", "server_policy"),
    [
        ("Aes128_Sha256_RsaOaep", "Sign", ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign),
        (
            "Aes256_Sha256_RsaPss",
            "SignAndEncrypt",
            ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
        ),
    ],
    ids=["Aes128_Sha256_RsaOaep-Sign", "Aes256_Sha256_RsaPss-SignAndEncrypt"],
)
async def test_other_policies_with_our_own_certificate(
    tmp_path: Path, policy: str, mode: str, server_policy: ua.SecurityPolicyType
) -> None:
    """Anonymous, a client certificate given in the config (its ApplicationUri is used)."""
    cert, key = await _server_certs(tmp_path)
    client_key, client_cert = tmp_path / "client-key.pem", tmp_path / "client-cert.der"
    await setup_self_signed_certificate(
        client_key,
        client_cert,
        "urn:plant:edge1:shopfloor",
        "127.0.0.1",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {},
    )
    plc = await PlcServer(free_port(), certs=(cert, key), policies=[server_policy]).start()
    try:
        security = {
            "policy": policy,
            "mode": mode,
            "server_certificate": str(cert),
            "certificate": str(client_cert),
            "private_key": str(client_key),
        }
        sink = Collector()
        run = Running(
            OpcUaAdapter(make_source(plc.endpoint, security=security, tags=TAGS[:1]), sink)
        )
        await sink.wait_for(lambda: len(sink.readings) >= 1, f"a reading over {policy} {mode}")
        assert sink.readings[0].value == 1.0
        await run.close()
    finally:
        await plc.stop()


def x509_der(path: Path) -> bytes:
    data = path.read_bytes()
    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError:
        cert = x509.load_pem_x509_certificate(data)
    return cert.public_bytes(serialization.Encoding.DER)


async def test_browse(plc: PlcServer) -> None:
    entries = await browse(plc.endpoint)
    by_path = {e.browse_path: e for e in entries}
    assert by_path["/0:Objects/2:Line1/2:State"].node_id == "ns=2;s=line1.state"
    assert by_path["/0:Objects/2:Line1/2:State"].data_type == "Int32"
    assert by_path["/0:Objects/2:Line1/2:Temperature"].data_type == "Double"
    assert by_path["/0:Objects/2:Line1/2:Running"].data_type == "Boolean"
    assert by_path["/0:Objects/2:Line1/2:Recipe"].data_type == "String"
    assert by_path["/0:Objects/2:Line1/2:GoodCount"].node_id == "ns=2;i=5001"
    assert by_path["/0:Objects/2:Line1/2:Pressure"].node_id == f"ns=2;g={GUID}"
    assert by_path["/0:Objects/2:Line1/2:Level"].node_id == "ns=2;b=AQID"
    assert not any(e.browse_path.startswith("/0:Objects/0:Server") for e in entries)


async def test_browse_cli(plc: PlcServer, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="shopfloor browse")
    browse_cli.configure_parser(parser)
    out = io.StringIO()
    # run() starts its own event loop, as the CLI's main() would: call it from a thread.
    code = await asyncio.to_thread(browse_cli.run, parser.parse_args([plc.endpoint]), out)
    assert code == 0
    text = out.getvalue()
    assert "NODE ID" in text and "ns=2;s=line1.state" in text and "Int32" in text

    saved = tmp_path / "server.der"
    code = await asyncio.to_thread(
        browse_cli.run,
        parser.parse_args([plc.endpoint, "--save-server-certificate", str(saved)]),
        out,
    )
    # The test server runs without a certificate: nothing to save, a clear error.
    assert code == 1 and not saved.exists()


@pytest.mark.parametrize("mode", ["subscription", "polling"])
async def test_tags_on_one_node_each_get_every_reading(plc: PlcServer, mode: str) -> None:
    """Issue 14: the line's state node is m1's state and m2's `upstream_state`; one counter node
    is both machines' good count. One monitored item (or Read) per node, and the real router
    gives each reading to each tag."""
    raw = make_source(plc.endpoint, mode=mode, poll_interval_s=0.1).model_dump(mode="json")
    raw["tags"] = [
        {"machine": "m1", "name": "state", "signal": "state", "node": "ns=2;s=line1.state"},
        {"machine": "m2", "name": "upstream_state", "node": "ns=2;s=line1.state"},
        {"machine": "m1", "name": "good", "signal": "good_count", "node": "ns=2;i=5001"},
        {"machine": "m2", "name": "good", "signal": "good_count", "node": "ns=2;i=5001"},
    ]
    cfg = config_with(raw)
    (src,) = cfg.sources
    assert isinstance(src, OpcUaSource)
    sink = RoutedSink(cfg)
    run = Running(OpcUaAdapter(src, sink))
    for state, count in [(2, 8), (1, 9), (2, 12)]:
        await plc.write("ns=2;s=line1.state", state, variant=ua.VariantType.Int32)
        await plc.write("ns=2;i=5001", count, variant=ua.VariantType.UInt32)
        seen = [float(state)], [float(count)]
        await eventually(
            lambda seen=seen: (
                (sink.values("m2.upstream_state")[-1:], sink.values("m2.good")[-1:]) == seen
            ),
            DEADLINE_S,
            f"state {state} and count {count}",
        )
    await run.close()
    sink.assert_each_tag_gets_every_reading(
        "m1.state", "m2.upstream_state", address="ns=2;s=line1.state"
    )
    sink.assert_each_tag_gets_every_reading("m1.good", "m2.good", address="ns=2;i=5001")
    assert {1.0, 2.0} <= set(sink.values("m1.state"))
    assert {8.0, 9.0, 12.0} <= set(sink.values("m1.good"))
