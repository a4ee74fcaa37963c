"""One OPC UA session with its security, shared by subscription, polling and browse.

asyncua's own auto-reconnect is off: the adapter reconnects itself, so that every new session
re-reads the namespace array, re-resolves `nsu=` ids and browse paths (a restarted server may
number its namespaces differently) and creates a fresh subscription.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from asyncua import Client, ua
from asyncua.crypto import security_policies, uacrypto
from asyncua.ua.status_codes import code_to_name_doc
from cryptography import x509

from adapters.errors import AdapterError, ConfigurationError, TransportError
from adapters.opcua.values import status_name
from config.sources.opcua import OpcUaSecurity, OpcUaSource, SecurityMode, SecurityPolicy

log = logging.getLogger(__name__)

POLICIES: dict[SecurityPolicy, type[security_policies.SecurityPolicy]] = {
    SecurityPolicy.BASIC256SHA256: security_policies.SecurityPolicyBasic256Sha256,
    SecurityPolicy.AES128_SHA256_RSAOAEP: security_policies.SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicy.AES256_SHA256_RSAPSS: security_policies.SecurityPolicyAes256Sha256RsaPss,
}
MODES = {
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}
GENERATED_CERT = "cert.der"
GENERATED_KEY = "key.pem"

# Status codes that trying again will not fix: say so plainly in the log.
_CONFIG_CODES = {
    ua.StatusCodes.BadUserAccessDenied,
    ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadIdentityTokenRejected,
    ua.StatusCodes.BadCertificateUntrusted,
    ua.StatusCodes.BadCertificateInvalid,
    ua.StatusCodes.BadCertificateUriInvalid,
    ua.StatusCodes.BadSecurityPolicyRejected,
    ua.StatusCodes.BadSecurityChecksFailed,
    ua.StatusCodes.BadSecurityModeRejected,
}


@dataclass(frozen=True)
class ConnectionOptions:
    """What a session needs; built from a source, or from the browse command's arguments."""

    endpoint: str
    name: str = "browse"
    security: OpcUaSecurity = field(default_factory=OpcUaSecurity)
    username: str | None = None
    password: str | None = None
    timeout_s: float = 5.0
    application_uri: str | None = None

    @classmethod
    def from_source(cls, source: OpcUaSource) -> ConnectionOptions:
        return cls(
            endpoint=source.endpoint,
            name=source.name,
            security=source.security,
            username=source.username,
            password=source.password.get_secret_value() if source.password else None,
            timeout_s=source.timeout_s,
            application_uri=source.application_uri,
        )


def default_certificate_dir(name: str) -> Path:
    """Where a generated client certificate is kept: the user's data dir, per source."""
    return Path(platformdirs.user_data_dir("shopfloor")) / "opcua" / name


def _uri_of_certificate(path: Path) -> str | None:
    data = path.read_bytes()
    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError:
        cert = x509.load_pem_x509_certificate(data)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


async def client_certificate(client: Client, opts: ConnectionOptions) -> tuple[Path, Path]:
    """The configured certificate and key, or a generated pair kept for the next start.

    The generated certificate is regenerated only when missing, expired or not matching the
    ApplicationUri / host name, so a server that trusted it keeps trusting it.
    """
    sec = opts.security
    if sec.certificate is not None and sec.private_key is not None:
        client.application_uri = (
            opts.application_uri or _uri_of_certificate(sec.certificate) or client.application_uri
        )
        return sec.certificate, sec.private_key
    directory = sec.certificate_dir or default_certificate_dir(opts.name)
    client.application_uri = (
        opts.application_uri or f"urn:{socket.gethostname()}:shopfloor:{opts.name}"
    )
    cert, key = await client.setup_self_signed_certificate(
        directory / GENERATED_KEY,
        directory / GENERATED_CERT,
        subject_attrs={"organizationName": "shopfloor"},
    )
    return cert, key


async def make_client(opts: ConnectionOptions) -> Client:
    """A configured, not yet connected client."""
    client = Client(opts.endpoint, timeout=opts.timeout_s, auto_reconnect=False)
    client.name = client.description = f"shopfloor {opts.name}"
    client.product_uri = "urn:shopfloor"
    if opts.username is not None:
        client.set_user(opts.username)
        client.set_password(opts.password or "")
    sec = opts.security
    if sec.policy is not SecurityPolicy.NONE:
        assert sec.server_certificate is not None  # the config requires it
        cert, key = await client_certificate(client, opts)
        try:
            await client.set_security(
                POLICIES[sec.policy],
                certificate=str(cert),
                private_key=str(key),
                server_certificate=str(sec.server_certificate),
                mode=MODES[sec.mode],
            )
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load certificates: {exc}", source=opts.name) from exc
    return client


def translate(exc: BaseException, name: str) -> AdapterError:
    """asyncua's and the socket's errors as ours, for status and logs."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, ua.UaStatusCodeError):
        code = getattr(exc, "code", None)
        cls = ConfigurationError if code in _CONFIG_CODES else TransportError
        if isinstance(exc, ua.UaStatusCodeErrors):  # one per operation
            return cls(", ".join(status_name(c) for c in exc.codes), source=name)
        doc = code_to_name_doc.get(code, ("", ""))[1] if isinstance(code, int) else ""
        return cls(f"{status_name(code)}: {doc}" if doc else status_name(code), source=name)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return TransportError("timed out", source=name)
    return TransportError(f"{type(exc).__name__}: {exc}", source=name)  # OSError and the rest


@asynccontextmanager
async def session(
    opts: ConnectionOptions,
    on_lost: Callable[[Exception], Coroutine[Any, Any, None]] | None = None,
) -> AsyncIterator[Client]:
    """A connected, activated session; closed on exit even if the server is gone."""
    client = await make_client(opts)
    if on_lost is not None:
        client.connection_lost_callback = on_lost
    try:
        await asyncio.wait_for(client.connect(), opts.timeout_s * 3)
    except Exception as exc:
        await _close_quietly(client, opts.timeout_s)
        raise translate(exc, opts.name) from exc
    try:
        yield client
    finally:
        await _close_quietly(client, opts.timeout_s)


async def _close_quietly(client: Client, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), timeout_s)
    except Exception as exc:  # the server is gone or the channel broke: nothing to close
        log.debug("disconnect: %r", exc)


async def save_server_certificate(
    endpoint: str, policy: SecurityPolicy, path: Path, timeout_s: float = 5.0
) -> Path:
    """Fetch the certificate an endpoint presents and write it (DER) for the user to trust."""
    client = Client(endpoint, timeout=timeout_s)
    endpoints = await client.connect_and_get_server_endpoints()
    wanted = POLICIES.get(policy)
    for ep in endpoints:
        if ep.ServerCertificate and (wanted is None or ep.SecurityPolicyUri == wanted.URI):
            der = ep.ServerCertificate
            cert = uacrypto.x509_from_der(der[: int.from_bytes(der[2:4], "big") + 4])
            await asyncio.to_thread(_write, path, uacrypto.der_from_x509(cert))
            return path
    raise ConfigurationError(f"{endpoint} offers no certificate for policy {policy.value}")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
