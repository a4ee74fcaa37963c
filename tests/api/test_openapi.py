"""The OpenAPI document says what the API does: security only when keys are configured, start and
end as date-time strings, path ids with the id rule (schemathesis relies on all of it)."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from config.plant import ID_PATTERN
from tests.api.plant import KEY, plant

WINDOWED = [
    "/api/v1/lines/{line}/kpis",
    "/api/v1/machines/{machine}/kpis",
    "/api/v1/lines/{line}/kpis/series",
    "/api/v1/machines/{machine}/kpis/series",
    "/api/v1/machines/{machine}/timeline",
    "/api/v1/lines/{line}/downtime",
    "/api/v1/machines/{machine}/downtime",
    "/api/v1/tags/{machine}/{tag}/series",
]


def spec(*, keys: bool) -> dict[str, Any]:
    cfg = plant(keys=[KEY]) if keys else plant()
    return create_app(cfg, database_url="postgresql://unused").openapi()


def operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {path: item["get"] for path, item in doc["paths"].items()}


def test_without_keys_no_security_is_declared() -> None:
    doc = spec(keys=False)
    assert "securitySchemes" not in doc.get("components", {})
    for path, op in operations(doc).items():
        assert "security" not in op, path
        assert "401" not in op["responses"], path


def test_with_keys_every_api_route_declares_the_bearer_scheme() -> None:
    doc = spec(keys=True)
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    ops = operations(doc)
    api = [p for p in ops if p.startswith("/api/v1/")]
    assert len(api) == 15  # + /overview and /lines/{line}/windows (the dashboard's)
    for path in api:
        assert ops[path]["security"] == [{"HTTPBearer": []}], path
        assert "401" in ops[path]["responses"], path
    for path in ("/healthz", "/metrics"):
        assert "security" not in ops[path]


@pytest.mark.parametrize("path", WINDOWED)
def test_times_are_date_time_strings(path: str) -> None:
    params = {p["name"]: p for p in operations(spec(keys=False))[path]["parameters"]}
    for name in ("start", "end"):
        assert params[name]["schema"]["type"] == "string"
        assert params[name]["schema"]["format"] == "date-time"
        assert not params[name]["required"]


@pytest.mark.parametrize("path", [*WINDOWED, "/api/v1/lines/{line}", "/api/v1/machines/{machine}"])
def test_path_ids_carry_the_id_rule(path: str) -> None:
    for p in operations(spec(keys=False))[path]["parameters"]:
        if p["in"] == "path":
            assert p["schema"]["pattern"] == ID_PATTERN
            assert p["schema"]["maxLength"] == 63
