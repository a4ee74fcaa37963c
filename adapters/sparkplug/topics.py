"""Sparkplug topic names (Sparkplug 3.0 §4.1): parsed, and the ones we subscribe and publish.

`spBv1.0/<group>/<type>/<edge node>[/<device>]` for edge nodes and devices, and
`spBv1.0/STATE/<host id>` for host applications. Pure functions, no client.
"""

from __future__ import annotations

from typing import NamedTuple

from adapters.errors import DecodeError
from config.sources.sparkplug import NAMESPACE, WILDCARD

NODE_TYPES = frozenset({"NBIRTH", "NDEATH", "NDATA", "NCMD"})
DEVICE_TYPES = frozenset({"DBIRTH", "DDEATH", "DDATA", "DCMD"})


class Topic(NamedTuple):
    """An edge node's or device's message topic; `device` is None for node messages."""

    kind: str  # NBIRTH, DDATA, ...
    group: str
    edge: str
    device: str | None


def parse(name: str) -> Topic:
    """A topic name's parts; DecodeError for a name that is not a Sparkplug B message topic."""
    parts = name.split("/")
    if len(parts) in (4, 5) and parts[0] == NAMESPACE:
        kind = parts[2]
        if len(parts) == 4 and kind in NODE_TYPES:
            return Topic(kind, parts[1], parts[3], None)
        if len(parts) == 5 and kind in DEVICE_TYPES and parts[4]:
            return Topic(kind, parts[1], parts[3], parts[4])
    raise DecodeError(f"not a Sparkplug B edge node or device topic: {name!r}")


def state_topic(host_id: str) -> str:
    """Where a host application publishes its STATE (3.0 form)."""
    return f"{NAMESPACE}/STATE/{host_id}"


def rebirth_topic(group: str, edge: str) -> str:
    """The NCMD topic of an edge node."""
    return f"{NAMESPACE}/{group}/NCMD/{edge}"


def subscription_filters(groups: list[str]) -> list[str]:
    """Data filters for the groups a source reads (`+`: all groups)."""
    if WILDCARD in groups:
        return [f"{NAMESPACE}/#"]
    return [f"{NAMESPACE}/{group}/#" for group in groups]
