"""MQTT source options: broker connection, and which topic and payload field feeds each tag.

Topics may carry the tag's machine and name as whole segments: `{machine}` and `{name}`
placeholders in a tag's `topic`, or in the source's `topic_template`, the default topic of tags
that give none. `plant/line1/{machine}/{name}` with tag `{machine: packer, name: temperature}`
reads topic `plant/line1/packer/temperature`; the adapter subscribes `plant/line1/+/+` once.
The topic syntax checks live here (config must not import adapters); matching is in
`adapters.mqtt.topics`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator

from config.bounds import Bounds, Port, ReconnectDelay
from config.net import is_loopback
from config.plant import Ident, Model
from config.tags import TagBase

PLACEHOLDERS = ("machine", "name")
MAX_TOPIC_BYTES = 65535  # a topic is a UTF-8 string with a 16-bit length (MQTT 5 §1.5.4)
PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


class TopicError(ValueError):
    """A topic filter or template that the MQTT spec (or our template syntax) rejects."""


def validate_filter(topic_filter: str) -> str:
    """Return the filter if valid (MQTT 5 §4.7): `#` last and alone, `+` alone in its segment."""
    if not topic_filter:
        raise TopicError("a topic filter is not empty")
    if "\0" in topic_filter:
        raise TopicError("a topic filter holds no NUL character")
    if len(topic_filter.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        raise TopicError(f"a topic filter is at most {MAX_TOPIC_BYTES} bytes of UTF-8")
    segments = topic_filter.split("/")
    for i, seg in enumerate(segments):
        if "#" in seg and (seg != "#" or i != len(segments) - 1):
            raise TopicError(f"'#' must be a whole last segment: {topic_filter!r}")
        if "+" in seg and seg != "+":
            raise TopicError(f"'+' must be a whole segment: {topic_filter!r}")
    return topic_filter


def template_fields(template: str) -> list[str]:
    """Placeholders of a topic template, checked: each fills a whole segment and is known."""
    found: list[str] = []
    for seg in template.split("/"):
        names = PLACEHOLDER.findall(seg)
        if not names:
            continue
        if len(names) != 1 or seg != f"{{{names[0]}}}":
            raise TopicError(f"a placeholder fills a whole topic segment: {seg!r} in {template!r}")
        if names[0] not in PLACEHOLDERS:
            raise TopicError(f"unknown placeholder {{{names[0]}}}; use {{machine}} or {{name}}")
        found.append(names[0])
    rest = PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise TopicError(f"unbalanced brace in topic {template!r}")
    return found


def expand_template(template: str, *, machine: str, name: str) -> str:
    """The tag's own topic (or filter): placeholders replaced by its machine and name."""
    template_fields(template)
    return template.replace("{machine}", machine).replace("{name}", name)


def _topic(topic: str) -> str:
    """A tag's topic or a source's template: placeholders checked, a valid filter once filled."""
    template_fields(topic)
    validate_filter(PLACEHOLDER.sub("x", topic))
    return topic


Topic = Annotated[str, AfterValidator(_topic)]


class MqttTls(Model):
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the broker")
    cert_file: Path | None = Field(default=None, description="client certificate (mutual TLS)")
    key_file: Path | None = None
    insecure: bool = Field(default=False, description="skip host name check (test brokers only)")

    @model_validator(mode="after")
    def _pair(self) -> MqttTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file are given together")
        return self


class MqttTag(TagBase):
    topic: Topic = Field(
        min_length=1,
        description="topic or filter with + and #; {machine} and {name} segments are filled "
        "from this tag; default: the source's topic_template",
    )
    field: str | None = Field(
        default=None, description="dot path into a JSON payload (a.b.0.c); unset: plain scalar"
    )
    timestamp_field: str | None = Field(
        default=None, description="dot path of the payload's timestamp; unset: arrival time"
    )
    timestamp_format: Literal["iso8601", "epoch_s", "epoch_ms"] = "iso8601"

    @model_validator(mode="after")
    def _timestamp_needs_json(self) -> MqttTag:
        if self.timestamp_field is not None and self.field is None:
            raise ValueError("timestamp_field needs field: both are paths into a JSON object")
        return self

    @property
    def topic_filter(self) -> str:
        """This tag's topic with its placeholders filled: what a message's topic must match."""
        return expand_template(self.topic, machine=self.machine, name=self.name)

    @property
    def reading_address(self) -> str:
        return f"{self.topic_filter}#{self.field or ''}"

    @property
    def read_options(self) -> dict[str, object]:
        """Tags on one topic and field are decoded once, so they share the timestamp."""
        return {"timestamp_field": self.timestamp_field, "timestamp_format": self.timestamp_format}


class MqttBroker(Model):
    """The broker connection, shared by the MQTT and Sparkplug sources."""

    name: Ident
    host: str
    port: Port = 1883
    protocol_version: Literal["5", "3.1.1"] = Field(
        default="5", description="MQTT protocol version the broker speaks"
    )
    client_id: str | None = Field(default=None, description="default: shopfloor-<source name>")
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTls | None = None
    keepalive_s: Annotated[int, Bounds(1, 65535, "s")] = 30
    reconnect_min_s: ReconnectDelay = Field(default=1.0, description="first reconnect delay")
    reconnect_max_s: ReconnectDelay = Field(default=30.0, description="reconnect delay cap")

    @model_validator(mode="after")
    def _reconnect_delays(self) -> MqttBroker:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is at least reconnect_min_s")
        return self

    def security_warnings(self) -> list[tuple[str, str]]:
        """(key path below this source, message) where security is off on a network."""
        if is_loopback(self.host):
            return []
        warnings = []
        if self.password is not None and self.tls is None:
            warnings.append(
                (
                    "password",
                    f"sent in clear text to {self.host}:{self.port}: the broker connection has "
                    "no tls",
                )
            )
        if self.tls is not None and self.tls.insecure:
            warnings.append(
                (
                    "tls.insecure",
                    "the broker certificate's host name is not checked: anyone on the path can "
                    "pose as the broker",
                )
            )
        return warnings

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"shopfloor-{self.name}"


class MqttSource(MqttBroker):
    protocol: Literal["mqtt"]
    qos: Literal[0, 1, 2] = 1
    clean_start: bool = Field(
        default=False, description="false: persistent session, messages acked after storage"
    )
    # Both are fixed-width fields of the CONNECT packet; paho's thread dies on a wider value.
    session_expiry_s: Annotated[int, Bounds(0, 2**32 - 1, "s")] = Field(
        default=86400,
        description="MQTT 5: how long the broker keeps the session while we are away "
        "(4294967295: never expires)",
    )
    topic_template: Topic | None = Field(
        default=None,
        description="default topic of tags without one, e.g. plant/line1/{machine}/{name}",
    )
    shared_group: Ident | None = Field(
        default=None,
        description="subscribe as a member of this shared subscription group ($share/<group>/"
        "<filter>): the broker hands each message to one of the group's collectors",
    )
    tags: list[MqttTag] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _default_topics(cls, data: Any) -> Any:
        template = data.get("topic_template") if isinstance(data, dict) else None
        if template is None or not isinstance(data.get("tags"), list):
            return data
        tags = [
            {**t, "topic": template} if isinstance(t, dict) and "topic" not in t else t
            for t in data["tags"]
        ]
        return {**data, "tags": tags}

    @model_validator(mode="after")
    def _checks(self) -> MqttSource:
        if not self.clean_start and self.protocol_version == "5" and self.session_expiry_s == 0:
            raise ValueError("a persistent session (clean_start: false) needs session_expiry_s > 0")
        return self
