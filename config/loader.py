"""Read a YAML config file into a `ShopfloorConfig`, or report every problem with where it is.

Order of work: the YAML document (size, encoding, characters, nesting and aliases bounded,
duplicate keys: `config.document`), `${ENV}` references, SHOPFLOOR_* overrides of settings, the
pydantic model, then the checks across keys and sections (`ShopfloorConfig.reference_problems`).
Each problem carries the key path (`lines[0].machines[2].ideal_cycle_s`) and, where the key is in
the file, its line number. Whatever the bytes, the only exception out of here is `ConfigError`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, create_model
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from config.document import MAX_FILE_BYTES, read_document
from config.model import ShopfloorConfig
from config.problems import (
    ConfigError,
    LineMap,
    PathPart,
    Problem,
    format_path,
    line_of,
    located,
)
from config.settings import Settings

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_PREFIX = "SHOPFLOOR_"

# Problems listed at most; a garbage file can have one per value (hundreds of thousands), and
# turning each into a message costs about a kilobyte.
MAX_PROBLEMS = 200

# A check the config package cannot make itself (OPC UA node id syntax lives in adapters).
Check = Callable[[ShopfloorConfig], Iterable[tuple[str, str]]]


def _substitute_env(
    data: Any, env: Mapping[str, str], path: tuple[PathPart, ...], problems: list[Problem]
) -> Any:
    if isinstance(data, dict):
        return {k: _substitute_env(v, env, (*path, str(k)), problems) for k, v in data.items()}
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


class _Variables(BaseSettings):
    """SHOPFLOOR_<SECTION>_<FIELD> as pydantic-settings finds them (a field per section of
    `Settings`, below), values left as text for the config model to check like the file's."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,  # SHOPFLOOR_COLLECTOR_SPOOL_MAX_MB: collector, spool_max_mb
        case_sensitive=True,
        enable_decoding=False,  # no JSON: SHOPFLOOR_API_KEYS is comma-separated (ApiSettings)
    )


# The sections: `settings.edge` is a plain value, named by each edge's own file.
SECTION_NAMES = [name for name, value in Settings() if isinstance(value, BaseModel)]
_SECTIONS: dict[str, Any] = {name.upper(): (dict[str, str], {}) for name in SECTION_NAMES}
_Environment = create_model("Environment", __base__=_Variables, **_SECTIONS)


@functools.cache
def env_override_names() -> dict[str, tuple[str, str]]:
    """SHOPFLOOR_* variable -> (section, field), e.g. SHOPFLOOR_DATABASE_URL; a field that
    repeats its section's name drops it (SHOPFLOOR_API_KEYS is api.api_keys)."""
    return {
        f"{ENV_PREFIX}{section}_{field.removeprefix(f'{section}_')}".upper(): (section, field)
        for section, defaults in Settings()
        if section in SECTION_NAMES
        for field in type(defaults).model_fields
    }


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """SHOPFLOOR_* variables over the file's settings, as pydantic-settings reads them in `env`
    (SHOPFLOOR_<SECTION> alone is no setting)."""
    source = EnvSettingsSource(_Environment)
    source.env_vars = {k: v for k, v in env.items() if "_" in k.removeprefix(ENV_PREFIX)}
    settings = data.setdefault("settings", {})
    if not isinstance(settings, dict):
        return
    for section, values in source().items():
        for name, value in values.items():
            found = env_override_names().get(f"{ENV_PREFIX}{section}_{name}")
            target = settings.setdefault(found[0], {}) if found else None
            if found and isinstance(target, dict):
                target[found[1]] = value


def _first_errors(exc: ValidationError, limit: int) -> list[dict[str, Any]]:
    """The first `limit` of pydantic's errors, without building the others as dicts."""
    text = exc.json(include_url=False, include_input=False)
    decoder = json.JSONDecoder()
    errors: list[dict[str, Any]] = []
    index = text.index("[") + 1
    while len(errors) < limit:
        while text[index] in " ,\n":
            index += 1
        if text[index] == "]":
            break
        error, index = decoder.raw_decode(text, index)
        errors.append(error)
    return errors


def _pydantic_problems(exc: ValidationError, data: Any, lines: LineMap) -> list[Problem]:
    problems = []
    for err in _first_errors(exc, MAX_PROBLEMS):
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
            Problem(formatted, msg.removeprefix("Value error, "), line_of(formatted, lines))
        )
    return problems


def _validate(
    source: str | bytes, filename: str, env: Mapping[str, str] | None
) -> tuple[ShopfloorConfig, LineMap]:
    """The config and the line map, or `ConfigError` with every problem found."""
    env = os.environ if env is None else env
    doc = read_document(source, filename)
    problems = list(doc.problems)
    data = _substitute_env(doc.data, env, (), problems)
    problems = [
        p if p.line else Problem(p.path, p.message, line_of(p.path, doc.lines)) for p in problems
    ]
    _apply_env_overrides(data, env)
    try:
        cfg = ShopfloorConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, data, doc.lines))
        raise ConfigError(filename, _capped(problems, exc.error_count())) from exc
    problems.extend(located(cfg.reference_problems(), doc.lines))
    if problems:
        raise ConfigError(filename, _capped(problems))
    return cfg, doc.lines


def _capped(problems: list[Problem], model_errors: int = 0) -> list[Problem]:
    """At most MAX_PROBLEMS problems, then one that says how many more there are."""
    more = len(problems) - MAX_PROBLEMS + max(0, model_errors - MAX_PROBLEMS)
    if more <= 0:
        return problems
    return [*problems[:MAX_PROBLEMS], Problem("", f"… and {more:,} more problem(s)")]


def parse_config(
    text: str | bytes, *, filename: str = "<config>", env: Mapping[str, str] | None = None
) -> ShopfloorConfig:
    """The config in `text` (bytes: decoded as YAML detects the encoding), or `ConfigError`."""
    return _validate(text, filename, env)[0]


def _read(path: Path) -> bytes:
    """The file's bytes, reading no more than one byte past the size limit."""
    try:
        with path.open("rb") as file:
            return file.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(str(path), [Problem("", f"cannot read: {reason}")]) from exc


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> ShopfloorConfig:
    path = Path(path)
    return parse_config(_read(path), filename=str(path), env=env)


@dataclass(frozen=True)
class CheckedConfig:
    """A valid config and what it leaves open: `warnings` (security off), with their lines."""

    config: ShopfloorConfig
    warnings: list[Problem]


def check_config(
    path: str | Path, env: Mapping[str, str] | None = None, *, checks: Iterable[Check] = ()
) -> CheckedConfig:
    """`load_config` plus further `checks` (problems: errors) and the security warnings.

    `shopfloor check` passes the checks that need other packages (OPC UA node id syntax).
    """
    path = Path(path)
    cfg, lines = _validate(_read(path), str(path), env)
    problems = [p for check in checks for p in located(list(check(cfg)), lines)]
    if problems:
        raise ConfigError(str(path), problems)
    return CheckedConfig(cfg, located(cfg.security_warnings(), lines))
