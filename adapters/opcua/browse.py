"""List a server's variables (node id, browse path, data type) so a user can write a tag map."""

from __future__ import annotations

from typing import NamedTuple

from asyncua import Client, ua

from adapters.opcua.connection import ConnectionOptions, session
from adapters.opcua.nodeid import format_nodeid, ua_node
from config.sources.opcua import OpcUaSecurity

MAX_NODES = 20_000  # a guard against endless address spaces (generated or cyclic)


class BrowseEntry(NamedTuple):
    node_id: str  # as the config's `node:` takes it: ns=2;s=...
    browse_path: str  # /0:Objects/2:Line1/2:State, also usable as `node:`
    data_type: str  # the DataType's browse name: Double, Int32, Boolean, ...


async def browse(
    endpoint: str,
    *,
    username: str | None = None,
    password: str | None = None,
    security: OpcUaSecurity | None = None,
    max_depth: int = 10,
    include_server: bool = False,
    timeout_s: float = 5.0,
) -> list[BrowseEntry]:
    """Every variable below the Objects folder, depth first in browse order.

    Properties (HasProperty, e.g. EURange) are left out, and so is the standard Server object
    unless `include_server`.
    """
    opts = ConnectionOptions(
        endpoint=endpoint,
        security=security or OpcUaSecurity(),
        username=username,
        password=password,
        timeout_s=timeout_s,
    )
    async with session(opts) as client:
        return await _walk(client, max_depth, include_server)


async def _walk(client: Client, max_depth: int, include_server: bool) -> list[BrowseEntry]:
    found: list[tuple[ua.NodeId, str]] = []
    seen: set[ua.NodeId] = {ua_node(ua.ObjectIds.ObjectsFolder)}
    stack: list[tuple[ua.NodeId, str, int]] = [
        (ua_node(ua.ObjectIds.ObjectsFolder), "/0:Objects", 0)
    ]
    while stack and len(seen) < MAX_NODES:
        nodeid, path, depth = stack.pop()
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
            if ref.NodeClass == ua.NodeClass.Variable:
                found.append((child, child_path))
            if depth + 1 < max_depth and ref.NodeClass in (
                ua.NodeClass.Object,
                ua.NodeClass.Variable,
            ):
                children.append((child, child_path, depth + 1))
        stack.extend(reversed(children))  # depth first, children in browse order
    types = await client.uaclient.read_attributes([n for n, _ in found], ua.AttributeIds.DataType)
    type_ids = {dv.Value.Value for dv in types if dv.Value is not None and dv.Value.Value}
    names = await _type_names(client, list(type_ids))
    entries = []
    for (nodeid, path), dv in zip(found, types, strict=True):
        type_name = names.get(dv.Value.Value, "?") if dv.Value is not None else "?"
        entries.append(BrowseEntry(format_nodeid(nodeid), path, type_name))
    return entries


async def _type_names(client: Client, type_ids: list[ua.NodeId]) -> dict[ua.NodeId, str]:
    if not type_ids:
        return {}
    dvs = await client.uaclient.read_attributes(type_ids, ua.AttributeIds.BrowseName)
    return {
        tid: (dv.Value.Value.Name if dv.Value is not None and dv.Value.Value else "?")
        for tid, dv in zip(type_ids, dvs, strict=True)
    }
