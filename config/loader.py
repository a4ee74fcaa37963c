"""Read a YAML config file into a `ShopfloorConfig`, or report every problem with where it is.

Order of work: YAML syntax and duplicate keys, `${ENV}` references, SHOPFLOOR_* overrides of
settings, the pydantic model, then references across sections. Each problem carries the key path
(`lines[0].machines[2].ideal_cycle_s`) and, where the key is in the file, its line number.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.model import ShopfloorConfig
from config.settings import Settings

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_PREFIX = "SHOPFLOOR_"

PathPart = str | int


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}" if self.path else "(top level)"
        at = f" (line {self.line})" if self.line else ""
        return f"{where}{at}: {self.message}"


class ConfigError(Exception):
    """The config file has problems; `problems` lists each one with its key path and line."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{filename}: {len(problems)} problem(s)\n{lines}")


def format_path(parts: tuple[PathPart, ...] | list[PathPart]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_map(node: yaml.Node, problems: list[Problem]) -> dict[tuple[PathPart, ...], int]:
    """Line of every key path in the document; duplicate mapping keys are problems."""
    lines: dict[tuple[PathPart, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[PathPart, ...]) -> None:
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in n.value:
                key = key_node.value
                if key in seen:
                    problems.append(
                        Problem(
                            format_path((*path, key)), "duplicate key", key_node.start_mark.line + 1
                        )
                    )
                seen.add(key)
                walk(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    walk(node, ())
    return lines


def _substitute_env(
    data: Any, env: Mapping[str, str], path: tuple[PathPart, ...], problems: list[Problem]
) -> Any:
    if isinstance(data, dict):
        return {k: _substitute_env(v, env, (*path, k), problems) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute_env(v, env, (*path, i), problems) for i, v in enumerate(data)]
    if isinstance(data, str):

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(
                    Problem(format_path(path), f"environment variable {name} is not set")
                )
                return ""
            return env[name]

        return ENV_REF.sub(repl, data)
    return data


def env_override_names() -> dict[str, tuple[str, str]]:
    """SHOPFLOOR_* variable -> (section, field), e.g. SHOPFLOOR_DATABASE_URL, SHOPFLOOR_API_KEYS."""
    names: dict[str, tuple[str, str]] = {}
    for section, info in Settings.model_fields.items():
        model = info.annotation
        for field in model.model_fields:  # type: ignore[union-attr]
            bare = field.removeprefix(f"{section}_")
            names[f"{ENV_PREFIX}{section}_{bare}".upper()] = (section, field)
    return names


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> None:
    settings = data.setdefault("settings", {})
    if not isinstance(settings, dict):
        return
    for var, (section, field) in env_override_names().items():
        if var not in env:
            continue
        target = settings.setdefault(section, {})
        if not isinstance(target, dict):
            continue
        value: Any = env[var]
        annotation = str(Settings.model_fields[section].annotation.model_fields[field].annotation)  # type: ignore[union-attr]
        if annotation.startswith("list"):
            value = [v.strip() for v in value.split(",") if v.strip()]
        target[field] = value


def _pydantic_problems(
    exc: ValidationError, data: Any, lines: Mapping[tuple[PathPart, ...], int]
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        # Walk the data along the error's location; parts that are not keys of the data (the
        # discriminator tag of a union, a validator's name) are pydantic's, not the user's.
        path: list[PathPart] = []
        node: Any = data
        for part in err["loc"]:
            if isinstance(node, dict) and part in node:
                node = node[part]
                path.append(str(part))  # a mapping key, even when YAML read it as a number
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
                path.append(part)
        if err["type"] == "missing" and err["loc"]:
            path.append(str(err["loc"][-1]))
        msg = err["msg"]
        ctx = err.get("ctx") or {}
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path.append(str(ctx.get("discriminator", "")).strip("'"))
            msg = (
                f"{ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
                if err["type"] == "union_tag_invalid"
                else "required key is missing"
            )
        formatted = format_path(path)
        problems.append(
            Problem(formatted, msg.removeprefix("Value error, "), _line_of(formatted, lines))
        )
    return problems


def _line_of(path: str, lines: Mapping[tuple[PathPart, ...], int]) -> int | None:
    """Line of a formatted key path, or of its nearest ancestor that is in the file."""
    parts: list[PathPart] = [
        int(p[1:-1]) if p.startswith("[") else p.lstrip(".")
        for p in re.findall(r"\[\d+\]|\.?[^.\[\]]+", path)
    ]
    for cut in range(len(parts), -1, -1):
        if tuple(parts[:cut]) in lines:
            return lines[tuple(parts[:cut])]
    return None


# libyaml's loader when PyYAML has it: a 10,000-tag plant parses several times faster and with a
# third of the peak memory of the pure-Python one (the collector's RSS peaks while loading).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_config(
    text: str, *, filename: str = "<config>", env: Mapping[str, str] | None = None
) -> ShopfloorConfig:
    env = os.environ if env is None else env
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)  # a safe loader (no arbitrary objects)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            filename,
            [
                Problem(
                    "",
                    f"YAML syntax: {getattr(exc, 'problem', exc)}",
                    mark.line + 1 if mark else None,
                )
            ],
        ) from exc
    if not isinstance(data, dict) or node is None:
        raise ConfigError(filename, [Problem("", "the file must hold a mapping (key: value)")])
    lines = _line_map(node, problems)
    data = _substitute_env(data, env, (), problems)
    problems = [
        p if p.line else Problem(p.path, p.message, _line_of(p.path, lines)) for p in problems
    ]
    _apply_env_overrides(data, env)
    try:
        cfg = ShopfloorConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, data, lines))
        raise ConfigError(filename, problems) from exc
    for path, message in cfg.reference_problems():
        problems.append(Problem(path, message, _line_of(path, lines)))
    if problems:
        raise ConfigError(filename, problems)
    return cfg


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> ShopfloorConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [Problem("", f"cannot read: {exc.strerror}")]) from exc
    return parse_config(text, filename=str(path), env=env)
