"""Topic filters and templates, table-driven: (filter, topic, expected)."""

from __future__ import annotations

import pytest

from adapters.mqtt.topics import matches, subscription_filters, template_filter
from config.sources.mqtt import TopicError, expand_template, validate_filter

MATCH_CASES = [
    ("a/b/c", "a/b/c", True),
    ("a/b/c", "a/b", False),
    ("a/b", "a/b/c", False),
    ("a/+/c", "a/b/c", True),
    ("a/+/c", "a//c", True),  # an empty level is a level
    ("a/+/c", "a/b/d", False),
    ("+/+", "a/b", True),
    ("+", "a/b", False),
    ("a/#", "a", True),  # '#' also matches the parent level
    ("a/#", "a/b/c/d", True),
    ("a/#", "b/c", False),
    ("#", "anything/at/all", True),
    ("#", "$SYS/broker/load", False),  # $ topics are not matched by leading wildcards
    ("+/broker/load", "$SYS/broker/load", False),
    ("$SYS/#", "$SYS/broker/load", True),
    ("a/b/", "a/b/", True),
    ("a/b/", "a/b", False),
    ("A/b", "a/b", False),  # case matters
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCH_CASES)
def test_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", "a/+b", "#/a", "a\0b"])
def test_invalid_filters(bad: str) -> None:
    with pytest.raises(TopicError):
        validate_filter(bad)


def test_template_filter_and_expansion() -> None:
    assert template_filter("plant/{machine}/{name}") == "plant/+/+"
    assert expand_template("plant/{machine}/{name}", machine="m1", name="t") == "plant/m1/t"
    assert expand_template("plain/topic", machine="m1", name="t") == "plain/topic"


@pytest.mark.parametrize("bad", ["plant/x{machine}/t", "plant/{line}/t", "plant/{machine", "a/{}"])
def test_invalid_templates(bad: str) -> None:
    with pytest.raises(TopicError):
        template_filter(bad)


SUBSCRIPTION_CASES = [
    (["a/b", "a/b"], ["a/b"]),
    (["a/b", "a/+"], ["a/+"]),
    (["a/b/c", "a/#"], ["a/#"]),
    (["a/+", "b/+"], ["a/+", "b/+"]),
    (["a/+/c", "a/b/+"], ["a/+/c", "a/b/+"]),  # overlap, but neither covers the other
    (["#", "a/b", "$SYS/x"], ["#", "$SYS/x"]),
    (["a", "a/#"], ["a/#"]),
]


@pytest.mark.parametrize(("filters", "expected"), SUBSCRIPTION_CASES)
def test_subscription_filters(filters: list[str], expected: list[str]) -> None:
    assert subscription_filters(filters) == sorted(expected)
