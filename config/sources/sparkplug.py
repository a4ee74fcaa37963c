"""Sparkplug B source options: the broker, our host application identity, and the tag map.

A tag names a metric by its Sparkplug address: group, edge node, optional device and metric
name. `+` as group or edge node matches any (one machine's metric on several nodes is rare; a
single group of identical cells is not). The reading address is `group/edge[/device]#metric`,
wildcards included, so the collector maps every match of a tag to that tag. Matching lives in
`adapters.sparkplug` (config must not import adapters).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from config.bounds import Bounds
from config.sources.mqtt import MqttBroker
from config.tags import TagBase

NAMESPACE = "spBv1.0"
WILDCARD = "+"
_FORBIDDEN = ("+", "/", "#")


def _sparkplug_id(value: str) -> str:
    """A group, edge node, device or host id (Sparkplug 3.0 §4.1): no `+`, `/` or `#`."""
    if not value:
        raise ValueError("a Sparkplug id is not empty")
    bad = [c for c in _FORBIDDEN if c in value]
    if bad:
        raise ValueError(f"a Sparkplug id holds no {' or '.join(map(repr, bad))}: {value!r}")
    return value


def _id_or_wildcard(value: str) -> str:
    return value if value == WILDCARD else _sparkplug_id(value)


SparkplugId = Annotated[str, AfterValidator(_sparkplug_id)]
IdOrWildcard = Annotated[str, AfterValidator(_id_or_wildcard)]


class SparkplugTag(TagBase):
    group: IdOrWildcard = Field(description="Sparkplug group id; + for any group")
    edge_node: IdOrWildcard = Field(description="edge node id; + for any edge node")
    device: SparkplugId | None = Field(
        default=None, description="device id; unset: a metric of the edge node itself"
    )
    metric: str = Field(min_length=1, description="metric name as in the birth certificate")

    @property
    def reading_address(self) -> str:
        node = f"{self.group}/{self.edge_node}"
        return f"{node}/{self.device}#{self.metric}" if self.device else f"{node}#{self.metric}"


class SparkplugSource(MqttBroker):
    protocol: Literal["sparkplug"]
    host_id: SparkplugId = Field(
        description="this host application's id; unique among the broker's host applications"
    )
    primary_host: bool = Field(
        default=False,
        description="publish STATE (retained, with a will) so edge nodes that name this host "
        "their primary host publish only while it is online",
    )
    send_rebirth: bool = Field(
        default=True,
        description="send Node Control/Rebirth on a seq gap, data before birth or an unknown alias",
    )
    rebirth_wait_s: Annotated[float, Bounds(0.1, 3600, "s")] = Field(
        default=5.0, description="least time between two Rebirth requests to one edge node"
    )
    reorder_timeout_s: Annotated[float, Bounds(0, 60, "s")] = Field(
        default=2.0,
        description="on a seq gap, how long to wait for the missing messages before asking for "
        "a Rebirth (the spec's Reorder Timeout); 0: ask at once",
    )
    store_transient: bool = Field(
        default=False, description="store metrics flagged is_transient (the spec says: do not)"
    )
    tags: list[SparkplugTag] = Field(min_length=1)

    @property
    def groups(self) -> list[str]:
        """Group ids to subscribe to; ['+'] when a tag names any group."""
        groups = sorted({t.group for t in self.tags})
        return [WILDCARD] if WILDCARD in groups else groups

    # The session is not ours to choose (Sparkplug 3.0 §5, host applications): a clean start
    # that expires at once. QoS 1 is what NDEATH and STATE are sent with; data comes at QoS 0.
    @property
    def clean_start(self) -> bool:
        return True

    @property
    def session_expiry_s(self) -> int:
        return 0

    @property
    def qos(self) -> int:
        return 1
