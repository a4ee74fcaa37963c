"""The query parameters a route declares, with their defaults as a URL spells them: which a
request may give (api.deps) and which spellings of one request are one answer (api.results)."""

from __future__ import annotations

import enum

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute


def _spelled(default: object) -> str | None:
    """A default as a query string gives it (`source=auto`, `raw=false`); None where there is
    nothing to spell (no default, a list)."""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, enum.Enum):
        default = default.value
    return str(default) if isinstance(default, str | int | float) else None


def _declared(dependant: Dependant) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for sub in dependant.dependencies:
        found.update(_declared(sub))
    found.update((p.alias, _spelled(p.default)) for p in dependant.query_params)
    return found


def route_query(route: APIRoute) -> dict[str, str | None]:
    """The route's query parameters: its dependencies' (in order), then its own, each with its
    default as spelled in a URL."""
    return _declared(route.dependant)
