"""A draft `tags:` block from what a server or broker shows (`shopfloor browse`, `listen`).

One naming rule for every protocol, so both commands name alike. `parts` are an address's names
below the root the user chose (browse names below `--root`; topic segments below the filter's
fixed prefix, then the JSON field's parts):

- machine: the first part when there are two or more, else the root's own name, else
  `TODO` (which `shopfloor check` reports as an unknown machine); `--machine` sets it for all.
  Kept as written (machine ids are case-sensitive), characters an id cannot hold become `_`.
- name: the remaining parts in lower snake case (`GoodCount` -> `good_count`), unique per
  machine (`_2`, `_3`, ...).
- signal: `measurement`, the schema's default; which tag is the state or a counter is the
  user's call (a wrong guess would feed the KPIs silently).
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from config.plant import ID_PATTERN
from config.tags import SignalKind

PLACEHOLDER_MACHINE = "TODO"
MAX_ID = 63  # config.plant.ID_PATTERN: 1 + 62 characters
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")
_WORD_BREAKS = (re.compile(r"([A-Z]+)([A-Z][a-z])"), re.compile(r"([a-z0-9])([A-Z])"))
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]*")  # needs no quotes in a flow mapping


@dataclass(frozen=True, slots=True)
class Found:
    """One readable thing: its names below the root, its address keys, a note for the user."""

    parts: tuple[str, ...]
    address: tuple[tuple[str, str], ...]  # (("node", "ns=2;s=x"),) or topic and field
    note: str


@dataclass(frozen=True, slots=True)
class DraftTag:
    machine: str
    name: str
    address: tuple[tuple[str, str], ...]
    note: str


def _ascii(text: str) -> str:
    """`Füllstand` -> `Fullstand`: ids are ASCII; accents dropped rather than the letter."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def machine_id(text: str) -> str | None:
    """A browse name or topic segment as a machine id (case kept), None if nothing is left."""
    ident = _NOT_ID.sub("_", _ascii(text)).strip("_-")[:MAX_ID]
    return ident if re.fullmatch(ID_PATTERN, ident) else None


def snake_name(parts: Sequence[str]) -> str:
    """Lower snake case of the parts joined, cut to an id's length; `value` if none is left."""
    words = []
    for part in parts:
        text = _ascii(part)
        for pattern in _WORD_BREAKS:
            text = pattern.sub(r"\1_\2", text)
        words.append(re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_"))
    name = "_".join(w for w in words if w)[:MAX_ID].rstrip("_")
    return name or "value"


def draft_tags(
    found: Sequence[Found], *, machine: str | None = None, root_name: str | None = None
) -> list[DraftTag]:
    """Machine and name for each found address, by the rule in this module's docstring."""
    root_machine = machine_id(root_name) if root_name else None
    taken: set[tuple[str, str]] = set()
    tags = []
    for item in found:
        if machine is not None:
            owner, rest = machine, item.parts
        elif len(item.parts) >= 2:
            owner, rest = machine_id(item.parts[0]) or PLACEHOLDER_MACHINE, item.parts[1:]
        else:
            owner, rest = root_machine or PLACEHOLDER_MACHINE, item.parts
        name = _unique(owner, snake_name(rest), taken)
        tags.append(DraftTag(owner, name, item.address, item.note))
    return tags


def _unique(machine: str, name: str, taken: set[tuple[str, str]]) -> str:
    """`name`, else `name_2`, `name_3`, ...: tag keys are unique whatever their case."""
    candidate, n = name, 1
    while (machine.casefold(), candidate.casefold()) in taken:
        n += 1
        suffix = f"_{n}"
        candidate = name[: MAX_ID - len(suffix)] + suffix
    taken.add((machine.casefold(), candidate.casefold()))
    return candidate


def yaml_scalar(text: str, *, quote: bool = False) -> str:
    """`text` as a YAML scalar for a flow mapping, on one line: plain where YAML reads it back
    as the same text, else double-quoted with escapes (line breaks, `#`, `on`, `4711`)."""
    if not quote and _PLAIN.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    dumped: str = yaml.safe_dump(
        [text], default_flow_style=True, default_style='"', allow_unicode=True, width=2**31
    )
    return dumped.strip()[1:-1]  # the list's brackets


def comment(text: str) -> str:
    """Text for a YAML comment: what would end the line or that YAML refuses, escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def render_tags(
    tags: Sequence[DraftTag], header: Sequence[str] = (), *, quoted_key: str = ""
) -> str:
    """A `tags:` block, one flow mapping per tag with its note as a comment; `quoted_key` names the
    address key whose value is always double-quoted (node ids, as the docs write them)."""
    kinds = ", ".join(s.value for s in SignalKind if s is not SignalKind.MEASUREMENT)
    lines = [f"# {comment(h)}" for h in header]
    lines.append(f"# signal: measurement unless the tag is a KPI signal: {kinds}")
    lines.append("tags:")
    for tag in tags:
        keys = [
            f"machine: {yaml_scalar(tag.machine)}",
            f"name: {yaml_scalar(tag.name)}",
            "signal: measurement",
            *(f"{k}: {yaml_scalar(v, quote=k == quoted_key)}" for k, v in tag.address),
        ]
        note = f"  # {comment(tag.note)}" if tag.note else ""
        lines.append(f"  - {{{', '.join(keys)}}}{note}")
    return "\n".join(lines) + "\n"


def add_draft_arguments(parser: argparse.ArgumentParser, protocol: str, guessed_from: str) -> None:
    """`--format table|yaml` and `--machine`, the same for every command that drafts."""
    parser.add_argument(
        "--format",
        choices=["table", "yaml"],
        default="table",
        help=f"yaml: a draft tags: block for an {protocol} source (review machine, name, signal)",
    )
    parser.add_argument(
        "--machine",
        type=_machine_argument,
        help=f"yaml: this machine for every tag (default: guessed from {guessed_from})",
    )


def _machine_argument(text: str) -> str:
    if machine_id(text) != text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is no machine id (1-63 letters, digits, _ and -, starting with a letter "
            "or digit)"
        )
    return text
