"""The query parameters a route declares, with their defaults as a URL spells them: which a
request may give (api.deps) and which spellings of one request are one answer (api.results)."""

from __future__ import annotations

import enum

from fastapi import Request
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


def route_query(request: Request) -> dict[str, str | None]:
    """The query parameters of the request's route: its dependencies' (in order), then its
    own, each with its default as spelled in a URL. Worked out once per route and app."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return {}
    known: dict[str, dict[str, str | None]] = request.app.state.route_queries
    found = known.get(route.unique_id)
    if found is None:
        found = known[route.unique_id] = _declared(route.dependant)
    return found
