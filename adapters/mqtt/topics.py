"""MQTT topic names, filters and templates: pure functions, no client.

A *filter* is what a client subscribes to (`plant/+/status`, `plant/#`); a *name* is the topic of
one message. A *template* is our own: a topic whose whole segments may be `{machine}` or `{name}`
placeholders, filled from a tag's machine and name (`plant/line1/{machine}/{name}`). Subscribing
uses the template with `+` in each placeholder, so one subscription serves every tag it covers.
"""

from __future__ import annotations

from config.sources.mqtt import (
    PLACEHOLDER,
    TopicError,
    expand_template,
    template_fields,
    validate_filter,
)

__all__ = [
    "TopicError",
    "expand_template",
    "match_template",
    "matches",
    "subscription_filters",
    "template_fields",
    "template_filter",
    "validate_filter",
]


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a message's topic name matches a subscription filter.

    A topic name is a filter without wildcards, so this is the covering test on it. Topics
    starting with `$` (broker internals like `$SYS`) are not matched by a leading wildcard.
    """
    return _covers(topic_filter, topic)


def template_filter(template: str) -> str:
    """The subscription filter covering every expansion of a template: placeholders become `+`."""
    template_fields(template)
    return validate_filter(PLACEHOLDER.sub("+", template))


def match_template(template: str, topic: str) -> dict[str, str] | None:
    """Placeholder values of a topic that matches the template, else None.

    `match_template("plant/{machine}/{name}", "plant/filler/state")`
    -> `{"machine": "filler", "name": "state"}`.
    """
    fields = template_fields(template)
    if not matches(template_filter(template), topic):
        return None
    values: dict[str, str] = {}
    tsegs = topic.split("/")
    for i, seg in enumerate(template.split("/")):
        m = PLACEHOLDER.fullmatch(seg)
        if m:
            value = tsegs[i]
            if m.group(1) in values and values[m.group(1)] != value:
                return None
            values[m.group(1)] = value
    assert set(values) == set(fields)
    return values


def subscription_filters(filters: list[str]) -> list[str]:
    """The fewest filters to subscribe: duplicates and filters covered by another are dropped.

    Overlapping subscriptions would make the broker deliver a message twice (MQTT 3.1.1) or
    once per subscription; we route each message to every tag it matches ourselves.
    """
    unique = sorted(set(filters))
    kept: list[str] = []
    for f in unique:
        if any(other != f and _covers(other, f) for other in unique):
            continue
        kept.append(f)
    return kept


def _covers(general: str, specific: str) -> bool:
    """Whether every topic matched by `specific` is matched by `general`.

    `$` topics are not covered by a leading wildcard; `#` also covers the parent level.
    """
    gsegs = general.split("/")
    ssegs = specific.split("/")
    if specific.startswith("$") and gsegs[0] in ("+", "#"):
        return False
    for i, g in enumerate(gsegs):
        if g == "#":
            return True
        if i >= len(ssegs):
            return False
        s = ssegs[i]
        if s == "#":
            return False
        if g != "+" and (s == "+" or g != s):
            return False
    return len(gsegs) == len(ssegs)
