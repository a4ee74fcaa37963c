"""OPC UA server front end (asyncua): one folder per machine, one variable per configured tag.

Variables carry the model event's time as SourceTimestamp, so a subscriber sees exactly the
truth file's timestamps. Endpoints, certificates and logins: docs/simulators.md, OPC UA.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import ipaddress
import logging
import re
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from config.simulation import SimulationConfig
from config.sources.opcua import OpcUaSource, OpcUaTag
from simulators.frontends import TimedEvent
from simulators.values import COUNTERS, MachineImage, counter_modulus, signal_of

log = logging.getLogger(__name__)

NODE_ID = re.compile(r"^(?:ns=(?P<ns>\d+)|nsu=(?P<nsu>[^;]+));(?P<kind>[si])=(?P<id>.+)$")


class _PasswordUsers(UserManager):
    """Admits exactly the source config's username and password."""

    def __init__(self, username: str, password: str) -> None:
        self._username, self._password = username, password

    def get_user(self, iserver, username=None, password=None, certificate=None):  # type: ignore[no-untyped-def]
        if username == self._username and password == self._password:
            return User(role=UserRole.User)
        return None


def _write_certificate(cert: Path, key: Path, uri: str, host: str) -> None:
    """A self-signed OPC UA application certificate (DER, or PEM by suffix) and its PEM key."""
    private_key = cert_gen.generate_private_key()
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(uri),
        x509.DNSName(socket.gethostname()),
        x509.DNSName("localhost"),
    ]
    with contextlib.suppress(ValueError):
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    certificate = cert_gen.generate_self_signed_app_certificate(
        private_key,
        f"shopfloor simulator {uri.rsplit(':', 1)[-1]}",
        {"organizationName": "shopfloor"},
        names,
        [ExtendedKeyUsageOID.SERVER_AUTH],
    )
    encoding = Encoding.PEM if cert.suffix.lower() == ".pem" else Encoding.DER
    cert.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(cert_gen.dump_private_key_as_pem(private_key))
    key.chmod(0o600)
    cert.write_bytes(certificate.public_bytes(encoding))


def _variant_type(signal: str) -> ua.VariantType:
    if signal in ("state", "stop_reason"):
        return ua.VariantType.UInt16
    if signal in COUNTERS:
        return ua.VariantType.UInt32
    if signal == "running":
        return ua.VariantType.Boolean
    return ua.VariantType.Double


class OpcUaFrontEnd:
    def __init__(
        self, source: OpcUaSource, sim: SimulationConfig, workdir: Path | None = None
    ) -> None:
        self.name = source.name
        self.source = source
        self.sim = sim
        self.images: dict[str, MachineImage] = {t.machine: MachineImage() for t in source.tags}
        self._by_machine: dict[str, list[tuple[OpcUaTag, str, ua.NodeId]]] = {}
        self._server: Server | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._workdir = workdir
        self.certificate: Path | None = None
        self.writes = 0
        self._initial_ts: dict[str, dt.datetime] = {}
        self._clock: asyncio.Task[None] | None = None

    def describe(self) -> str:
        user = f", user {self.source.username!r}" if self.source.username else ""
        return (
            f"OPC UA server {self.source.endpoint} (None, Basic256Sha256 Sign/SignAndEncrypt"
            f"{user}; certificate {self.certificate})"
        )

    def prime(self, events: Sequence[TimedEvent]) -> None:
        for event, ts in events:
            image = self.images.get(event.machine)
            if image is not None:
                image.apply(event)
                self._initial_ts[event.machine] = ts

    async def start(self) -> None:
        src = self.source
        users = None
        if src.username:
            password = src.password.get_secret_value() if src.password else ""
            users = _PasswordUsers(src.username, password)
        server = Server(user_manager=users)
        await server.init()
        server.set_endpoint(src.endpoint)
        server.set_server_name(f"shopfloor simulator {src.name}")
        uri = f"urn:shopfloor:simulator:{src.name}"
        await server.set_application_uri(uri)
        await self._certificates(server, uri)
        server.set_security_policy(
            [
                ua.SecurityPolicyType.NoSecurity,
                ua.SecurityPolicyType.Basic256Sha256_Sign,
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ]
        )
        if users is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        await self._address_space(server)
        # asyncua's own clock task sleeps 1 s between ticks and stop() waits for it; ours is
        # cancelled at once, so the server stops in milliseconds.
        server.disable_clock(True)
        await server.start()
        self._server = server
        self._clock = asyncio.create_task(self._tick(server), name=f"opcua-clock-{self.name}")

    async def _tick(self, server: Server) -> None:
        """Keep Server/ServerStatus/CurrentTime current, as clients expect of a live server."""
        status_node = server.get_node(ua.ObjectIds.Server_ServerStatus)
        time_node = server.get_node(ua.ObjectIds.Server_ServerStatus_CurrentTime)
        while True:
            now = dt.datetime.now(dt.UTC)
            status = copy.copy(await status_node.read_value())
            status.CurrentTime = now
            await status_node.write_value(status)
            await time_node.write_value(now)
            await asyncio.sleep(1)

    async def _certificates(self, server: Server, uri: str) -> None:
        """Use the simulation's certificate, else the one the source trusts, else a temp one.

        When the source config names `security.server_certificate` and the file is missing,
        the simulator creates it (with its key beside it, `<name>.key.pem`), so a collector
        configured with that path trusts exactly this server.
        """
        if self.sim.opcua_certificate and self.sim.opcua_private_key:
            cert, key = self.sim.opcua_certificate, self.sim.opcua_private_key
        else:
            trusted = self.source.security.server_certificate
            if trusted is not None:
                cert, key = trusted, trusted.with_name(f"{trusted.stem}.key.pem")
            else:
                if self._workdir is None:
                    self._tmp = tempfile.TemporaryDirectory(prefix="shopfloor-sim-opcua-")
                    base = Path(self._tmp.name)
                else:
                    base = self._workdir
                cert, key = base / f"{self.name}-cert.der", base / f"{self.name}-key.pem"
            if not cert.exists() or not key.exists():
                _write_certificate(cert, key, uri, self.endpoint_address()[0])
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        self.certificate = cert

    async def _namespace(self, server: Server, match: re.Match[str]) -> int:
        if match["nsu"]:
            return await server.register_namespace(match["nsu"])
        ns = int(match["ns"])
        while len(await server.get_namespace_array()) <= ns:
            await server.register_namespace(
                f"urn:shopfloor:simulator:{self.name}:ns{len(await server.get_namespace_array())}"
            )
        return ns

    async def _address_space(self, server: Server) -> None:
        folders = {}
        for tag in self.source.tags:
            match = NODE_ID.match(tag.node)
            if match is None:
                raise ValueError(
                    f"tag {tag.key}: the simulator serves node ids ns=N;s=..., "
                    f"ns=N;i=... or nsu=URI;s=..., not {tag.node!r}"
                )
            ns = await self._namespace(server, match)
            index = ua.Int16(ns)
            node_id = (
                ua.NodeId(ua.Int32(int(match["id"])), index)
                if match["kind"] == "i"
                else ua.NodeId(ua.String(match["id"]), index)
            )
            if tag.machine not in folders:
                folder_id = ua.NodeId(ua.String(tag.machine), index)
                if folder_id == node_id:
                    folder_id = ua.NodeId(ua.String(f"machines/{tag.machine}"), index)
                folders[tag.machine] = await server.nodes.objects.add_folder(
                    folder_id, ua.QualifiedName(tag.machine, ns)
                )
            signal = signal_of(tag)
            vtype = _variant_type(signal)
            initial = self._value(tag, signal)
            await folders[tag.machine].add_variable(
                node_id, ua.QualifiedName(tag.name, ns), ua.Variant(initial, vtype)
            )
            if tag.machine in self._initial_ts:
                await self._write(
                    server, node_id, ua.Variant(initial, vtype), self._initial_ts[tag.machine]
                )
            self._by_machine.setdefault(tag.machine, []).append((tag, signal, node_id))

    def _value(self, tag: OpcUaTag, signal: str) -> float | int | bool:
        value = self.images[tag.machine].values[signal]
        if signal in COUNTERS:
            return int(value) % counter_modulus(tag, self.sim.machine(tag.machine).counter_bits)
        if signal == "running":
            return bool(value)
        if signal in ("state", "stop_reason"):
            return int(value)
        return float(value)

    async def publish(self, events: Sequence[TimedEvent]) -> None:
        assert self._server is not None
        for event, ts in events:
            image = self.images.get(event.machine)
            if image is None:
                continue
            changed = image.apply(event)
            for tag, signal, node_id in self._by_machine.get(event.machine, []):
                if signal not in changed:
                    continue
                variant = ua.Variant(self._value(tag, signal), _variant_type(signal))
                await self._write(self._server, node_id, variant, ts)

    async def _write(
        self, server: Server, node_id: ua.NodeId, variant: ua.Variant, ts: dt.datetime
    ) -> None:
        # asyncua annotates timestamps as its DateTime subclass; it takes any aware datetime
        dv = ua.DataValue(
            variant,
            SourceTimestamp=ts,  # type: ignore[arg-type]
            ServerTimestamp=dt.datetime.now(dt.UTC),  # type: ignore[arg-type]
        )
        await server.write_attribute_value(node_id, dv)
        self.writes += 1

    def endpoint_address(self) -> tuple[str, int]:
        parts = urlsplit(self.source.endpoint)
        return parts.hostname or "127.0.0.1", parts.port or 4840

    async def stop(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
            self._clock = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
