"""/healthz and /metrics: open without a key, so probes and Prometheus need no secret.

With a collector in the process (`shopfloor run`) they report its pipeline, spool and sources;
API-only (`shopfloor serve`) they report whether the database answers.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

router = APIRouter(tags=["health"])


class HealthSource(Protocol):
    def health(self) -> dict[str, Any]: ...

    def metrics(self) -> str: ...


async def _database_answers(request: Request) -> tuple[bool, str | None]:
    try:
        async with request.app.state.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # any failure is the answer we report
        return False, f"{type(exc).__name__}: {exc}"
    return True, None


async def _snapshot(request: Request) -> dict[str, Any]:
    source: HealthSource | None = request.app.state.health
    if source is not None:
        return source.health()
    ok, error = await _database_answers(request)
    return {
        "status": "ok" if ok else "failing",
        "problems": [] if ok else [f"database unavailable: {error}"],
        "database": {"connected": ok, "last_error": error},
    }


@router.get(
    "/healthz",
    summary="Health of the database, spool, pipeline and sources",
    responses={503: {"description": "failing: `problems` says why"}},
)
async def healthz(request: Request) -> JSONResponse:
    snap = await _snapshot(request)
    return JSONResponse(snap, status_code=503 if snap["status"] == "failing" else 200)


@router.get(
    "/metrics", summary="The same in Prometheus text format", response_class=PlainTextResponse
)
async def metrics(request: Request) -> PlainTextResponse:
    source: HealthSource | None = request.app.state.health
    if source is not None:
        text = source.metrics()
    else:
        ok, _ = await _database_answers(request)
        text = (
            "# HELP shopfloor_database_up the API can query the database\n"
            "# TYPE shopfloor_database_up gauge\n"
            f"shopfloor_database_up {int(ok)}\n"
        )
    text += request.app.state.cache.metrics()
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
