"""MQTT topic names, filters and templates: pure functions, no client.

A *filter* is what a client subscribes to (`plant/+/status`, `plant/#`); a *name* is the topic of
one message. A *template* is our own: a topic whose whole segments may be `{machine}` or `{name}`
placeholders, filled from a tag's machine and name (`plant/line1/{machine}/{name}`). Subscribing
uses the template with `+` in each placeholder, so one subscription serves every tag it covers.
"""

from __future__ import annotations

from config.sources.mqtt import PLACEHOLDER, template_fields, validate_filter


def template_filter(template: str) -> str:
    """The subscription filter covering every expansion of a template: placeholders become `+`."""
    template_fields(template)
    return validate_filter(PLACEHOLDER.sub("+", template))


def subscription_filters(filters: list[str]) -> list[str]:
    """The fewest filters to subscribe: duplicates and filters covered by another are dropped.

    Overlapping subscriptions would make the broker deliver a message twice (MQTT 3.1.1) or
    once per subscription; we route each message to every tag it matches ourselves.
    """
    unique = sorted(set(filters))
    return [f for f in unique if not any(other != f and matches(other, f) for other in unique)]


def matches(general: str, specific: str) -> bool:
    """Whether every topic matched by filter `specific` is matched by filter `general`; for a
    message's topic name (a filter without wildcards), whether it matches subscription `general`.

    Topics starting with `$` (broker internals like `$SYS`) are not matched by a leading
    wildcard; `#` also covers the parent level.
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


def shared(filters: list[str], group: str | None) -> list[str]:
    """The filters as a shared subscription group's (MQTT 5 §4.8.2, `$share/<group>/<filter>`):
    the broker hands each matching message to one member of the group. Messages keep their own
    topic names, so routing them to tags is unchanged."""
    if group is None:
        return filters
    return [f"$share/{group}/{f}" for f in filters]
