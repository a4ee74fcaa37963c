"""OPC UA source options, named as OPC UA names them (UaExpert-style node ids)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

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
        default=None, description="the server certificate to trust explicitly"
    )

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaSecurity:
        if (self.policy is SecurityPolicy.NONE) != (self.mode is SecurityMode.NONE):
            raise ValueError(
                "policy None goes with mode None, and a real policy with Sign or SignAndEncrypt"
            )
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and private_key are given together")
        return self


class OpcUaTag(TagBase):
    node: str = Field(
        description="node id as UaExpert shows it: ns=2;s=..., ns=2;i=..., nsu=<uri>;s=..., "
        "or a browse path /0:Objects/2:Line1/2:State"
    )
    deadband_type: Literal["absolute", "percent"] | None = None
    deadband_value: float | None = Field(default=None, ge=0)

    @property
    def reading_address(self) -> str:
        return self.node


class OpcUaSource(Model):
    protocol: Literal["opcua"]
    name: Ident
    endpoint: str = Field(pattern=r"^opc\.tcp://", description="opc.tcp://host:port/path")
    security: OpcUaSecurity = Field(default_factory=OpcUaSecurity)
    username: str | None = None
    password: SecretStr | None = None
    mode: Literal["subscription", "polling"] = "subscription"
    publishing_interval_ms: float = Field(default=500, gt=0)
    sampling_interval_ms: float = Field(default=250, ge=0)
    queue_size: int = Field(default=10, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0)
    timestamp: Literal["source", "server"] = "source"
    timeout_s: float = Field(default=5.0, gt=0)
    tags: list[OpcUaTag] = Field(min_length=1)
