"""Flags with counts: additive like times and counts, rendered as KPI.md's list of strings.

Inside sums a flag is a name with a count (`{"counter_resets": 2}`), so bucket sums add up to
the window's. In a KPI result, `flags` is a sorted list of strings: a flag whose count means
something is rendered `name:N` (`counter_resets:2`), a yes/no flag as its bare name
(`calendar_missing`). `flag_counts` carries the same as a dict for programs.
"""

from __future__ import annotations

from collections.abc import Mapping

FlagCounts = Mapping[str, int]

COUNTED = frozenset({"counter_resets", "counter_wraps", "counter_glitches", "counts_span_unknown"})


def add_flags(a: FlagCounts, b: FlagCounts) -> dict[str, int]:
    if not b:  # the common case, kept cheap (it runs per machine and bucket)
        return {k: v for k, v in a.items() if v} if a else {}
    out = dict(a)
    for name, n in b.items():
        out[name] = out.get(name, 0) + n
    return {k: v for k, v in out.items() if v}


def render(flags: FlagCounts) -> list[str]:
    return sorted(f"{k}:{v}" if k in COUNTED else k for k, v in flags.items() if v)
