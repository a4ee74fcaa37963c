"""OPC UA source options, named as OPC UA names them (UaExpert-style node ids).

Security: with a policy other than None the server's certificate must be given
(`server_certificate`): it is trusted explicitly, never fetched and accepted on first use
(`shopfloor browse --save-server-certificate` fetches it for you to inspect and keep). Without
`certificate`/`private_key` a client certificate is generated once and kept in
`certificate_dir` (default: the user's data dir, `shopfloor/opcua/<source name>/`); the server
must trust it (copy `cert.der` into its trusted folder).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, model_validator

from config.bounds import Bounds, PollInterval, ReconnectDelay, Timeout
from config.net import is_loopback
from config.plant import Ident, Model
from config.tags import TagBase


class SecurityPolicy(StrEnum):
    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128_Sha256_RsaOaep"
    AES256_SHA256_RSAPSS = "Aes256_Sha256_RsaPss"


class SecurityMode(StrEnum):
    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class OpcUaSecurity(Model):
    policy: SecurityPolicy = SecurityPolicy.NONE
    mode: SecurityMode = SecurityMode.NONE
    certificate: Path | None = Field(
        default=None, description="client certificate (DER or PEM); generated and kept if unset"
    )
    private_key: Path | None = None
    server_certificate: Path | None = Field(
        default=None, description="the server certificate to trust explicitly (DER or PEM)"
    )
    certificate_dir: Path | None = Field(
        default=None,
        description="where a generated client certificate is kept; default: the user's data "
        "dir, shopfloor/opcua/<source name>",
    )

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaSecurity:
        if (self.policy is SecurityPolicy.NONE) != (self.mode is SecurityMode.NONE):
            raise ValueError(
                "policy None goes with mode None, and a real policy with Sign or SignAndEncrypt"
            )
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and private_key are given together")
        if self.policy is not SecurityPolicy.NONE and self.server_certificate is None:
            raise ValueError(
                f"policy {self.policy.value} needs server_certificate: the server "
                "is trusted explicitly (shopfloor browse --save-server-certificate)"
            )
        return self


Timestamp = Literal["source", "server", "collector"]
"""Which clock stamps a reading: the device's SourceTimestamp, the server's, or the collector's
when it read the value (polling) or received it (subscription)."""


class OpcUaTag(TagBase):
    node: str = Field(
        description="node id as UaExpert shows it: ns=2;s=..., ns=2;i=..., nsu=<uri>;s=..., "
        "or a browse path /0:Objects/2:Line1/2:State"
    )
    timestamp: Timestamp | None = Field(
        default=None, description="this tag's reading time, as the source's `timestamp`"
    )
    deadband_type: Literal["absolute", "percent"] | None = None
    deadband_value: Annotated[float, Bounds(0, None)] | None = Field(
        default=None, description="absolute: in the value's unit; percent: 0..100 of EURange"
    )

    @model_validator(mode="after")
    def _deadband(self) -> OpcUaTag:
        if (self.deadband_type is None) != (self.deadband_value is None):
            raise ValueError("deadband_type and deadband_value are given together")
        if self.deadband_type == "percent" and (self.deadband_value or 0) > 100:
            raise ValueError("a percent deadband is 0..100")
        return self

    @property
    def reading_address(self) -> str:
        return self.node

    @property
    def read_options(self) -> dict[str, object]:
        """Tags on one node share its monitored item or read, so they share its deadband and
        its timestamp."""
        return {
            "deadband_type": self.deadband_type,
            "deadband_value": self.deadband_value,
            "timestamp": self.timestamp,
        }


def endpoint_host(endpoint: str) -> str:
    """The host of an opc.tcp:// URL; ValueError when it has none or a bad port."""
    parts = urlsplit(endpoint)
    if parts.port == 0 or not parts.hostname:  # .port raises ValueError beyond 65535
        raise ValueError(f"{endpoint[:80]!r} names no host (and a port 1 to 65535)")
    return parts.hostname


def _endpoint(endpoint: str) -> str:
    endpoint_host(endpoint)
    return endpoint


class OpcUaSource(Model):
    protocol: Literal["opcua"]
    name: Ident
    endpoint: Annotated[str, AfterValidator(_endpoint)] = Field(
        pattern=r"^opc\.tcp://", description="opc.tcp://host:port/path"
    )
    security: OpcUaSecurity = Field(default_factory=OpcUaSecurity)
    username: str | None = None
    password: SecretStr | None = None
    mode: Literal["subscription", "polling"] = "subscription"
    publishing_interval_ms: Annotated[float, Bounds(1, 3_600_000, "ms")] = 500
    sampling_interval_ms: Annotated[float, Bounds(0, 3_600_000, "ms")] = Field(
        default=250, description="0: as fast as the server samples"
    )
    queue_size: Annotated[int, Bounds(1, 65535)] = 10
    poll_interval_s: PollInterval = 1.0
    timestamp: Timestamp = Field(
        default="source",
        description="source, server, or collector: the collector's clock when it read (polling) "
        "or received (subscription) the value; a tag's own `timestamp` overrides it",
    )
    timeout_s: Timeout = 5.0
    reconnect_min_s: ReconnectDelay = Field(default=1.0, description="first reconnect delay")
    reconnect_max_s: ReconnectDelay = Field(default=30.0, description="reconnect delay cap")
    application_uri: str | None = Field(
        default=None,
        description="client ApplicationUri; default: from the certificate, or "
        "urn:<host>:shopfloor:<source name> for a generated one",
    )
    tags: list[OpcUaTag] = Field(min_length=1)

    @model_validator(mode="after")
    def _reconnect(self) -> OpcUaSource:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is at least reconnect_min_s")
        return self

    def security_warnings(self) -> list[tuple[str, str]]:
        """(key path below this source, message) where security is off on a network."""
        host = endpoint_host(self.endpoint)
        if self.security.policy is not SecurityPolicy.NONE or is_loopback(host):
            return []
        warnings = [
            (
                "security.policy",
                f"security policy None: traffic with {host} is neither signed nor encrypted, "
                "so anyone on the network can read or alter it",
            )
        ]
        if self.password is not None:
            warnings.append(
                (
                    "password",
                    "with security policy None the password may cross the network in clear "
                    "text (unless the server's user token policy encrypts it)",
                )
            )
        return warnings
