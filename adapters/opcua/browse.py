"""List a server's variables (node id, browse path, data type) so a user can write a tag map.

The walk starts at the Objects folder, or at a root the user names (`--root`, a node id or a
browse path) to list one machine's or one line's subtree; each entry keeps its names below that
root, from which `shopfloor browse --format yaml` drafts tag names (adapters.tag_draft).
"""

from __future__ import annotations

from typing import NamedTuple

from asyncua import Client, ua

from adapters.errors import ConfigurationError
from adapters.opcua.connection import ConnectionOptions, session
from adapters.opcua.nodeid import (
    BrowsePath,
    NodeRef,
    format_nodeid,
    parse_node,
    to_relative_path,
    to_ua_nodeid,
    ua_node,
)
from adapters.opcua.values import status_name
from config.sources.opcua import OpcUaSecurity

MAX_NODES = 20_000  # a guard against endless address spaces (generated or cyclic)
MAX_PATH = 64  # parents followed up to the Root folder for a root given by node id
OBJECTS_PATH = "/0:Objects"


class BrowseEntry(NamedTuple):
    node_id: str  # as the config's `node:` takes it: ns=2;s=...
    browse_path: str  # /0:Objects/2:Line1/2:State, also usable as `node:`
    data_type: str  # the DataType's browse name: Double, Int32, Boolean, ...
    below_root: tuple[str, ...] = ()  # browse names from the walk's root down: (Line1, State)


class Browsed(list[BrowseEntry]):
    """The variables found, and the root the walk started from."""

    def __init__(self, entries: list[BrowseEntry], root_path: str, root_name: str | None) -> None:
        super().__init__(entries)
        self.root_path = root_path  # as a browse path
        self.root_name = root_name  # its browse name; None for the Objects folder


async def browse(
    endpoint: str,
    *,
    username: str | None = None,
    password: str | None = None,
    security: OpcUaSecurity | None = None,
    root: str | None = None,
    max_depth: int = 10,
    include_server: bool = False,
    timeout_s: float = 5.0,
) -> Browsed:
    """Every variable below the Objects folder (or `root`), depth first in browse order.

    Properties (HasProperty, e.g. EURange) are left out, and so is the standard Server object
    unless `include_server`. ConfigurationError: no such root.
    """
    try:
        ref = parse_node(root) if root is not None else None
    except ConfigurationError as exc:
        raise ConfigurationError(f"root: {exc}") from None
    opts = ConnectionOptions(
        endpoint=endpoint,
        security=security or OpcUaSecurity(),
        username=username,
        password=password,
        timeout_s=timeout_s,
    )
    async with session(opts) as client:
        try:
            start, path, name = await _root(client, ref)
        except ua.UaStatusCodeError as exc:
            raise ConfigurationError(f"root {root}: {status_name(exc.code)}") from exc
        entries = await _walk(client, start, path, max_depth, include_server)
        return Browsed(entries, path, name)


async def _root(
    client: Client, ref: NodeRef | BrowsePath | None
) -> tuple[ua.NodeId, str, str | None]:
    """The root's node id, browse path and browse name (None for the Objects folder)."""
    objects = ua_node(ua.ObjectIds.ObjectsFolder)
    if ref is None:
        return objects, OBJECTS_PATH, None
    if isinstance(ref, BrowsePath):
        (result,) = await client.translate_browsepaths(
            client.nodes.root.nodeid, [to_relative_path(ref)]
        )
        if not result.StatusCode.is_good() or not result.Targets:
            name = status_name(result.StatusCode)
            raise ConfigurationError(f"root {ref}: browse path not found ({name})")
        target = result.Targets[0].TargetId
        nodeid = ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType)
        path = str(ref)
    else:
        namespaces = await client.get_namespace_array() if ref.namespace_uri else None
        nodeid = to_ua_nodeid(ref, namespaces)
        path = await _path_of(client, nodeid)
    if nodeid == objects:
        return nodeid, path, None
    browse_name = await client.get_node(nodeid).read_browse_name()
    return nodeid, path, browse_name.Name


async def _path_of(client: Client, nodeid: ua.NodeId) -> str:
    """A browse path from the Root folder, along the first parent each node names, so the
    entries' browse paths are whole (usable as `node:`)."""
    await client.get_node(nodeid).read_browse_name()  # BadNodeIdUnknown before anything else
    nodes = await client.get_node(nodeid).get_path(MAX_PATH)
    if nodes[0].nodeid != ua_node(ua.ObjectIds.RootFolder):
        raise ConfigurationError(
            f"root {format_nodeid(nodeid)}: no path from the Root folder to this node"
        )
    names = [await n.read_browse_name() for n in nodes[1:]]
    return "".join(f"/{q.NamespaceIndex}:{q.Name}" for q in names)


async def _walk(
    client: Client, start: ua.NodeId, start_path: str, max_depth: int, include_server: bool
) -> list[BrowseEntry]:
    found: list[tuple[ua.NodeId, str, tuple[str, ...]]] = []
    seen: set[ua.NodeId] = {start}
    stack: list[tuple[ua.NodeId, str, tuple[str, ...]]] = [(start, start_path, ())]
    while stack and len(seen) < MAX_NODES:
        nodeid, path, names = stack.pop()
        refs = await client.get_node(nodeid).get_children_descriptions()
        children = []
        for ref in refs:
            if ref.ReferenceTypeId == ua_node(ua.ObjectIds.HasProperty):
                continue
            child = ua.NodeId(
                ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType
            )
            if child in seen:
                continue
            if not include_server and child == ua_node(ua.ObjectIds.Server):
                continue
            seen.add(child)
            name = ref.BrowseName
            child_path = f"{path}/{name.NamespaceIndex}:{name.Name}"
            child_names = (*names, name.Name)
            if ref.NodeClass == ua.NodeClass.Variable:
                found.append((child, child_path, child_names))
            if len(child_names) < max_depth and ref.NodeClass in (
                ua.NodeClass.Object,
                ua.NodeClass.Variable,
            ):
                children.append((child, child_path, child_names))
        stack.extend(reversed(children))  # depth first, children in browse order
    if not found:
        return []
    types = await client.uaclient.read_attributes(
        [n for n, _, _ in found], ua.AttributeIds.DataType
    )
    type_ids = {dv.Value.Value for dv in types if dv.Value is not None and dv.Value.Value}
    type_names = await _type_names(client, list(type_ids))
    entries = []
    for (nodeid, path, names), dv in zip(found, types, strict=True):
        type_name = type_names.get(dv.Value.Value, "?") if dv.Value is not None else "?"
        entries.append(BrowseEntry(format_nodeid(nodeid), path, type_name, names))
    return entries


async def _type_names(client: Client, type_ids: list[ua.NodeId]) -> dict[ua.NodeId, str]:
    if not type_ids:
        return {}
    dvs = await client.uaclient.read_attributes(type_ids, ua.AttributeIds.BrowseName)
    return {
        tid: (dv.Value.Value.Name if dv.Value is not None and dv.Value.Value else "?")
        for tid, dv in zip(type_ids, dvs, strict=True)
    }
