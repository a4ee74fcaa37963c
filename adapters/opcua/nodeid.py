"""Node ids as users write them (UaExpert, OPC UA Part 6 §5.3.1.10), parsed without a server.

    ns=2;s=Line1.State     string id in namespace index 2
    ns=2;i=1001            numeric id            i=2258 (namespace 0)
    ns=3;g=<guid>          GUID id               ns=3;b=<base64>   opaque (ByteString) id
    nsu=urn:acme:plc;s=X   namespace given by URI: its index is looked up on the server at
                           connect, since indexes may change when the server restarts
    /0:Objects/2:Line1/2:State
                           browse path from the Root folder: qualified names `index:Name`
                           (no index: 0), followed along hierarchical references

`parse_node` is pure; `to_ua_nodeid` needs only the server's namespace array.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from typing import Literal

from asyncua import ua

from adapters.errors import ConfigurationError

IdKind = Literal["i", "s", "g", "b"]
UINT32_MAX = 2**32 - 1
UINT16_MAX = 2**16 - 1

_NS_PART = re.compile(r"^(ns|nsu)=([^;]*);(.*)$", re.DOTALL)
_ID_PART = re.compile(r"^([isgb])=(.*)$", re.DOTALL)
_PATH_ELEMENT = re.compile(r"^(?:(\d+):)?(.+)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node id: namespace by index or by URI, and an identifier of one of four kinds."""

    kind: IdKind
    identifier: int | str | uuid.UUID | bytes
    namespace_index: int = 0
    namespace_uri: str | None = None


@dataclass(frozen=True, slots=True)
class BrowsePath:
    """A path of qualified names (namespace index, name) from the Root folder."""

    elements: tuple[tuple[int, str], ...]

    def __str__(self) -> str:
        return "".join(f"/{ns}:{name}" for ns, name in self.elements)


def parse_node(text: str) -> NodeRef | BrowsePath:
    """Parse a configured node; ConfigurationError says what is wrong with it."""
    raw = text.strip()
    if not raw:
        raise ConfigurationError("empty node id")
    if raw.startswith("/"):
        return _parse_browse_path(raw)
    namespace_index = 0
    namespace_uri = None
    rest = raw
    m = _NS_PART.match(raw)
    if m:
        key, value, rest = m.groups()
        if key == "ns":
            if not _small_number(value, UINT16_MAX):
                raise ConfigurationError(f"namespace index must be 0..65535 in {text!r}")
            namespace_index = int(value)
        else:
            if not value:
                raise ConfigurationError(f"empty namespace URI in {text!r}")
            namespace_uri = value
    m = _ID_PART.match(rest)
    if not m:
        raise ConfigurationError(
            f"not a node id: {text!r} (expected ns=<index>;s=<name>, i=, g=, b=, "
            "nsu=<uri>;s=<name>, or a browse path /0:Objects/2:Name)"
        )
    kind, value = m.groups()
    identifier: int | str | uuid.UUID | bytes
    if kind == "i":
        if not _small_number(value, UINT32_MAX):
            raise ConfigurationError(f"numeric id must be 0..4294967295 in {text!r}")
        identifier = int(value)
    elif kind == "s":
        if not value:
            raise ConfigurationError(f"empty string id in {text!r}")
        identifier = value  # may hold ';' and '=': the rest of the text is the id
    elif kind == "g":
        try:
            identifier = uuid.UUID(value.strip("{}"))
        except ValueError:
            raise ConfigurationError(f"not a GUID in {text!r}") from None
    else:
        try:
            identifier = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ConfigurationError(f"opaque id must be base64 in {text!r}") from None
        if not identifier:
            raise ConfigurationError(f"empty opaque id in {text!r}")
    return NodeRef(kind, identifier, namespace_index, namespace_uri)  # type: ignore[arg-type]


def _parse_browse_path(text: str) -> BrowsePath:
    parts = text.split("/")[1:]
    if not parts or any(p == "" for p in parts):
        raise ConfigurationError(f"empty element in browse path {text!r}")
    elements = []
    for part in parts:
        m = _PATH_ELEMENT.match(part)
        assert m is not None  # `.+` matches any non-empty part
        ns, name = m.groups()
        if ns is not None and not _small_number(ns, UINT16_MAX):
            raise ConfigurationError(f"namespace index must be 0..65535 in {text!r}")
        elements.append((int(ns) if ns is not None else 0, name))
    return BrowsePath(tuple(elements))


_UA_KIND = {
    "i": ua.NodeIdType.Numeric,
    "s": ua.NodeIdType.String,
    "g": ua.NodeIdType.Guid,
    "b": ua.NodeIdType.ByteString,
}


def ua_node(
    identifier: int | str | uuid.UUID | bytes,
    namespace_index: int = 0,
    kind: ua.NodeIdType | None = None,
) -> ua.NodeId:
    """asyncua's NodeId of plain values (its kind guessed from the identifier if not given)."""
    # asyncua annotates the fields with its wire classes (ua.Int32, ua.String, ...) where it
    # takes, and itself passes, plain int, str, UUID and bytes.
    return ua.NodeId(identifier, namespace_index, kind)  # type: ignore[arg-type]


def to_ua_nodeid(ref: NodeRef, namespaces: list[str] | None = None) -> ua.NodeId:
    """The asyncua NodeId; a namespace URI is looked up in the server's namespace array.

    Numeric ids keep the generic form: asyncua encodes small ones compactly itself."""
    index = ref.namespace_index
    if ref.namespace_uri is not None:
        if namespaces is None or ref.namespace_uri not in namespaces:
            raise ConfigurationError(f"the server has no namespace {ref.namespace_uri!r}")
        index = namespaces.index(ref.namespace_uri)
    return ua_node(ref.identifier, index, _UA_KIND[ref.kind])


def to_relative_path(path: BrowsePath) -> ua.RelativePath:
    """The path as a RelativePath over hierarchical references (for TranslateBrowsePaths)."""
    elements = []
    for ns, name in path.elements:
        el = ua.RelativePathElement()
        el.ReferenceTypeId = ua_node(ua.ObjectIds.HierarchicalReferences)
        el.IsInverse = False  # type: ignore[assignment]  # annotated ua.Boolean: takes a bool
        el.TargetName = ua.QualifiedName(name, ns)  # IncludeSubtypes: True by default
        elements.append(el)
    rp = ua.RelativePath()
    rp.Elements = elements
    return rp


def format_nodeid(nodeid: ua.NodeId) -> str:
    """A node id as users write it: `ns=2;s=X`, `i=85`, `ns=3;b=<base64>`."""
    prefix = f"ns={nodeid.NamespaceIndex};" if nodeid.NamespaceIndex else ""
    identifier = nodeid.Identifier
    if isinstance(identifier, bytes):
        return f"{prefix}b={base64.b64encode(identifier).decode('ascii')}"
    kind = {ua.NodeIdType.String: "s", ua.NodeIdType.Guid: "g"}.get(nodeid.NodeIdType, "i")
    return f"{prefix}{kind}={identifier}"


def _small_number(text: str, most: int) -> bool:
    """ASCII digits (`isdigit` takes '²' and other scripts' digits, which `int` refuses) of a
    value 0..most; the length check keeps `int` from ever seeing thousands of digits."""
    return text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= most
