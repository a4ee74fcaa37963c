"""Node id parsing, table-driven: every form users copy from UaExpert, and what is rejected."""

from __future__ import annotations

import uuid

import pytest
from asyncua import ua

from adapters.errors import ConfigurationError
from adapters.opcua.nodeid import (
    BrowsePath,
    NodeRef,
    format_nodeid,
    parse_node,
    to_relative_path,
    to_ua_nodeid,
)

GUID = "72962b91-fa75-4ae6-8d28-b404dc7daf63"

PARSE_CASES = [
    ("ns=2;s=filler.state", NodeRef("s", "filler.state", 2)),
    ("ns=2;s=a;b=c", NodeRef("s", "a;b=c", 2)),  # a string id may hold ';' and '='
    ("ns=2;s=Line 1/State", NodeRef("s", "Line 1/State", 2)),
    ("s=plain", NodeRef("s", "plain", 0)),
    ("ns=2;i=1001", NodeRef("i", 1001, 2)),
    ("i=2258", NodeRef("i", 2258, 0)),
    ("ns=0;i=4294967295", NodeRef("i", 4294967295, 0)),
    (f"ns=3;g={GUID}", NodeRef("g", uuid.UUID(GUID), 3)),
    (f"ns=3;g={{{GUID.upper()}}}", NodeRef("g", uuid.UUID(GUID), 3)),
    ("ns=4;b=AQID", NodeRef("b", b"\x01\x02\x03", 4)),
    ("nsu=urn:acme:plc;s=Line1.State", NodeRef("s", "Line1.State", 0, "urn:acme:plc")),
    ("nsu=http://acme.com/UA/;i=7", NodeRef("i", 7, 0, "http://acme.com/UA/")),
    ("  ns=2;s=trimmed  ", NodeRef("s", "trimmed", 2)),
    ("/0:Objects/2:Line1/2:State", BrowsePath(((0, "Objects"), (2, "Line1"), (2, "State")))),
    ("/Objects/Server", BrowsePath(((0, "Objects"), (0, "Server")))),
    ("/0:Objects/2:Speed: m/s", None),  # '/' separates elements: 'Speed: m' then 's'
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_node(text: str, expected: NodeRef | BrowsePath | None) -> None:
    got = parse_node(text)
    if expected is None:
        assert isinstance(got, BrowsePath) and len(got.elements) == 3
    else:
        assert got == expected


BAD_CASES = [
    "",
    "filler.state",
    "ns=x;s=a",
    "ns=70000;s=a",
    "ns=2;s=",
    "ns=2;i=abc",
    "ns=2;i=-1",
    "ns=2;i=4294967296",
    "ns=2;g=not-a-guid",
    "ns=2;b=!!notbase64",
    "ns=2;x=1",
    "nsu=;s=a",
    "ns=2",
    "/",
    "/0:Objects//2:Line1",
    "/99999:Objects",
    "ns=²;s=a",  # isdigit() says yes, int() raised ValueError
    "ns=2;i=" + "9" * 5000,  # int() refuses more than 4300 digits
]


@pytest.mark.parametrize("text", BAD_CASES)
def test_parse_node_rejects(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_node(text)


def test_to_ua_nodeid_and_back() -> None:
    for text in ["ns=2;s=filler.state", "ns=2;i=1001", "i=85", f"ns=3;g={GUID}", "ns=4;b=AQID"]:
        ref = parse_node(text)
        assert isinstance(ref, NodeRef)
        nodeid = to_ua_nodeid(ref)
        assert format_nodeid(nodeid) == text
        assert nodeid == ua.NodeId.from_string(text)  # asyncua agrees


def test_namespace_uri_is_looked_up() -> None:
    ref = parse_node("nsu=urn:acme:plc;s=X")
    assert isinstance(ref, NodeRef)
    assert to_ua_nodeid(
        ref, ["http://opcfoundation.org/UA/", "urn:srv", "urn:acme:plc"]
    ) == ua.NodeId("X", 2)
    with pytest.raises(ConfigurationError, match="no namespace"):
        to_ua_nodeid(ref, ["http://opcfoundation.org/UA/"])


def test_relative_path() -> None:
    path = parse_node("/0:Objects/2:Line1")
    assert isinstance(path, BrowsePath) and str(path) == "/0:Objects/2:Line1"
    rp = to_relative_path(path)
    assert [(e.TargetName.NamespaceIndex, e.TargetName.Name) for e in rp.Elements] == [
        (0, "Objects"),
        (2, "Line1"),
    ]
    assert all(e.IncludeSubtypes and not e.IsInverse for e in rp.Elements)
