"""A config file's bytes to plain data plus the line of every key path; hostile files refused.

Order of work, each step bounding what the next may cost: size, encoding, characters, then the
structure on the parser's event stream before anything is built (nesting, an alias inside the
node it names, and the values aliases stand for: a "billion laughs" file is refused at the
alias that crosses `MAX_NODES`), then composing and constructing (a value the constructor
cannot read is a problem with its line). The steps and why: docs/config.md, "Order of work"
and "YAML rules".
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml
from yaml.constructor import ConstructorError

from config.problems import ConfigError, PathPart, Problem, format_path

MAX_FILE_BYTES = 16 * 1024 * 1024
# A 10,000-tag plant has about 100,000 values. Reading a value costs PyYAML about 600 bytes
# and validating a wrong one about as much again, so this bound is also what a file of garbage
# values can cost: about 250 MB and a few seconds. Room for about 30,000 tags.
MAX_NODES = 300_000
MAX_DEPTH = 64  # the deepest config key (simulation.machines.<id>.mtbf.mean_s) is 5 levels

# libyaml's parser when PyYAML has it: a 10,000-tag plant parses several times faster and with a
# third of the peak memory of the pure-Python one (the collector's RSS peaks while loading).
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# YAML 1.1's printable characters (PyYAML's reader refuses the rest, libyaml most of it).
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # what YAML counts as a new line

_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)


@dataclass(frozen=True)
class Document:
    """The file's data, the line of each key path, and problems that do not stop validation."""

    data: dict[Any, Any]
    lines: dict[tuple[PathPart, ...], int]
    problems: list[Problem] = field(default_factory=list)


def read_document(source: str | bytes, filename: str) -> Document:
    """The file as data and lines; `ConfigError` for anything YAML or these bounds refuse."""
    if len(source) > MAX_FILE_BYTES:
        _fail(filename, f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB")
    text = decode(source, filename) if isinstance(source, bytes) else source
    _check_characters(text, filename)
    _check_structure(text, filename)
    return _load(text, filename)


def _fail(filename: str, message: str, line: int | None = None) -> NoReturn:
    raise ConfigError(filename, [Problem("", message, line)])


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of text[index], counting line breaks as YAML does."""
    line, start = 1, 0
    for match in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return line, index - start + 1


# -- bytes to text --------------------------------------------------------------------------------


def _guess_encoding(data: bytes) -> tuple[str, int, bool]:
    """(codec, bytes of byte order mark, guessed from zero bytes) by YAML 1.2 §5.2."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom), False
    if len(data) >= 4 and data[:3] == b"\0\0\0":
        return "utf-32-be", 0, True
    if len(data) >= 4 and data[1:4] == b"\0\0\0":
        return "utf-32-le", 0, True
    if len(data) >= 2 and data[0] == 0:
        return "utf-16-be", 0, True
    if len(data) >= 2 and data[1] == 0:
        return "utf-16-le", 0, True
    return "utf-8", 0, False


def decode(data: bytes, filename: str) -> str:
    """The file's text; a byte that does not decode is a problem at its line and column.

    Without a byte order mark, UTF-16/32 is only a guess from zero bytes: when the guess does
    not decode, the file is read (and reported) as UTF-8, by far the likelier intent.
    """
    codec, skip, guessed = _guess_encoding(data)
    if guessed:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            codec, skip = "utf-8", 0
    try:
        return data[skip:].decode(codec)
    except UnicodeDecodeError as exc:
        good = data[skip : skip + exc.start].decode(codec)
        line, column = _position(good, len(good))
        bad = data[skip + exc.start : skip + min(exc.end, exc.start + 4)]
        _fail(
            filename,
            f"the file is not {codec.upper()} text: column {column} holds the byte(s) "
            f"{bad.hex(' ')} ({exc.reason}); save it as UTF-8 (an editor's 'ANSI' or Latin-1 "
            "encoding writes umlauts this way)",
            line,
        )


def _check_characters(text: str, filename: str) -> None:
    bad = _NOT_PRINTABLE.search(text)
    if bad is None:
        return
    line, column = _position(text, bad.start())
    char = ord(bad.group())
    if 0xD800 <= char <= 0xDFFF:
        kind = "half of a UTF-16 surrogate pair, alone"
    elif char < 0x20 or 0x7F <= char <= 0x9F:
        kind = "a control character; only tab and line breaks are allowed"
    else:
        kind = "a noncharacter"
    _fail(
        filename,
        f"column {column} holds the character U+{char:04X}, which YAML does not allow ({kind})",
        line,
    )


# -- structure, on the event stream ---------------------------------------------------------------


@dataclass
class _Open:
    """A collection whose end event has not come yet."""

    anchor: str | None
    size: int = 1  # values inside, itself included, aliases counted as their copies
    height: int = 1  # collections nested inside, itself included


@dataclass
class _StructureCheck:
    """Counts what the document expands to, without building it: each anchor's size once."""

    open: list[_Open] = field(default_factory=list)
    anchors: dict[str, tuple[int, int]] = field(default_factory=dict)  # size, height
    total: int = 0

    def see(self, event: yaml.Event) -> Problem | None:
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.DocumentStartEvent):
            self.anchors.clear()
        elif isinstance(event, yaml.AliasEvent):
            return self._alias(str(event.anchor), line)
        elif isinstance(event, yaml.ScalarEvent):
            self._close(event.anchor, 1, 0)
            return self._count(1, line)
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(self.open) >= MAX_DEPTH:
                return Problem("", f"nesting deeper than {MAX_DEPTH} levels", line)
            self.open.append(_Open(event.anchor))
            return self._count(1, line)
        elif isinstance(event, yaml.CollectionEndEvent):
            done = self.open.pop()
            self._close(done.anchor, done.size, done.height)
        return None

    def _close(self, anchor: str | None, size: int, height: int) -> None:
        """A finished node: remembered under its anchor, added to its parent."""
        if anchor is not None:
            self.anchors[anchor] = (size, height)
        if self.open:
            parent = self.open[-1]
            parent.size += size
            parent.height = max(parent.height, height + 1)

    def _count(self, size: int, line: int | None) -> Problem | None:
        self.total += size
        if self.total > MAX_NODES:
            return Problem("", f"the document holds more than {MAX_NODES:,} values", line)
        return None

    def _alias(self, name: str, line: int | None) -> Problem | None:
        if any(o.anchor == name for o in self.open):
            return Problem(
                "", f"alias *{name} is inside the node &{name} it names: an endless structure", line
            )
        if name not in self.anchors:
            return Problem("", f"alias *{name} has no anchor &{name} before it", line)
        size, height = self.anchors[name]
        if len(self.open) + height > MAX_DEPTH:
            return Problem("", f"alias *{name} nests deeper than {MAX_DEPTH} levels", line)
        if self.total + size > MAX_NODES:
            return Problem(
                "",
                f"alias *{name} stands for a copy of {size:,} values and takes the document "
                f"beyond {MAX_NODES:,}: aliases of aliases multiply (a 'billion laughs' file)",
                line,
            )
        self._close(None, size, height)
        return self._count(size, line)


def yaml_problem(exc: yaml.YAMLError) -> Problem:
    """A PyYAML error as a problem at its line."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    kind = (
        "YAML" if isinstance(exc, ConstructorError | yaml.composer.ComposerError) else "YAML syntax"
    )
    message = f"{kind}: {context}, {problem}" if context else f"{kind}: {problem}"
    return Problem("", message, mark.line + 1 if mark is not None else None)


def _check_structure(text: str, filename: str) -> None:
    check = _StructureCheck()
    try:
        for event in yaml.parse(text, Loader=_BASE_LOADER):
            problem = check.see(event)
            if problem is not None:
                raise ConfigError(filename, [problem])
    except yaml.YAMLError as exc:
        raise ConfigError(filename, [yaml_problem(exc)]) from exc


# -- nodes and data -------------------------------------------------------------------------------


class _Loader(_BASE_LOADER):
    """The safe loader; a scalar its constructor cannot read is a YAML error at its line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            value = node.value if isinstance(node, yaml.ScalarNode) else ""
            raise ConstructorError(
                None, None, f"{value[:60]!r} is not a valid {kind}: {exc}", node.start_mark
            ) from exc


def _load(text: str, filename: str) -> Document:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            _fail(filename, "the file is empty; a config holds at least lines:")
        problems: list[Problem] = []
        lines = line_map(node, problems)  # first: construction flattens merge keys into nodes
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(filename, [yaml_problem(exc)]) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        _fail(
            filename,
            f"the file holds {_kind(data)}; a config is a mapping (key: value) of lines:, "
            "sources:, settings: …",
            node.start_mark.line + 1,
        )
    return Document(data, lines, problems)


def _kind(data: object) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, set):
        return "a set"
    return "a single value"


def line_map(node: yaml.Node, problems: list[Problem]) -> dict[tuple[PathPart, ...], int]:
    """Line of every key path in the document; duplicate mapping keys are problems.

    A node met again through an alias is not walked again: paths below an alias take the
    line of the key that holds the alias, which is where the reader should look.
    """
    lines: dict[tuple[PathPart, ...], int] = {}
    seen_nodes: set[int] = set()

    def walk(n: yaml.Node, path: tuple[PathPart, ...]) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if id(n) in seen_nodes:
            return
        seen_nodes.add(id(n))
        if isinstance(n, yaml.MappingNode):
            keys: set[object] = set()
            for key_node, value_node in n.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
                child = (*path, key if isinstance(key, str) else "?")  # a complex key: [a, b]: …
                line = key_node.start_mark.line + 1
                if key in keys:
                    problems.append(Problem(format_path(child), "duplicate key", line))
                keys.add(key)
                lines[child] = line
                walk(value_node, child)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    walk(node, ())
    return lines
