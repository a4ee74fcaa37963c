"""A secured OPC UA session: Basic256Sha256 SignAndEncrypt, generated certificates, a password."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import BadUserAccessDenied
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import SecretStr

from config.sources.opcua import OpcUaSecurity
from simulators import run_simulators
from simulators.truth import load, value_at
from tests.simulators.helpers import demo_config, port_of, utc

USER, PASSWORD = "operator", "s3cret-line-1"


async def client_certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "client-cert.der", tmp_path / "client-key.pem"
    await setup_self_signed_certificate(
        key,
        cert,
        "urn:shopfloor:test-client",
        socket.gethostname(),
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"organizationName": "shopfloor tests"},
    )
    return cert, key


async def test_sign_and_encrypt_with_username_reads_the_truth(tmp_path: Path) -> None:
    cfg = demo_config()
    opcua = cfg.sources[0].model_copy(
        update={
            "security": OpcUaSecurity(
                policy="Basic256Sha256",
                mode="SignAndEncrypt",
                server_certificate=tmp_path / "pki" / "server.der",
            ),
            "username": USER,
            "password": SecretStr(PASSWORD),
        }
    )
    cfg = cfg.model_copy(update={"sources": [opcua]})  # only the OPC UA server this time
    url = f"opc.tcp://127.0.0.1:{port_of(cfg, 'filler-plc')}/shopfloor/sim"
    cert, key = await client_certificate(tmp_path)
    truth_path = tmp_path / "truth.jsonl"
    async with run_simulators(cfg, speed=60, seed=2, truth_path=truth_path) as sims:
        # the simulator created the certificate the source config trusts
        assert sims.frontend("filler-plc").certificate == tmp_path / "pki" / "server.der"
        client = Client(url)
        client.application_uri = "urn:shopfloor:test-client"
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            str(cert),
            str(key),
            server_certificate=str(tmp_path / "pki" / "server.der"),
            mode=ua.MessageSecurityMode.SignAndEncrypt,
        )
        client.set_user(USER)
        client.set_password(PASSWORD)
        async with client:
            assert client.security_policy.Mode == ua.MessageSecurityMode.SignAndEncrypt
            dv = await client.get_node("ns=2;s=filler.state").read_data_value()

        intruder = Client(url)
        intruder.set_user(USER)
        intruder.set_password("wrong password")
        with pytest.raises(BadUserAccessDenied):
            async with intruder:
                pass
    assert dv.Value.Value == value_at(load(truth_path), "filler", "state", utc(dv.SourceTimestamp))
