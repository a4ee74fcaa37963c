"""The dashboard page at `/`, and its stylesheet and ES modules under ASSETS_URL (static/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

STATIC = Path(__file__).parent / "static"
ASSETS_URL = "/static/dashboard"

router = APIRouter(include_in_schema=False)


class _Revalidated(StaticFiles):
    """Files the browser revalidates (by ETag) before each use: after an update of the product,
    no module of the old page is mixed with the new ones."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


@router.get("/")
async def dashboard_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS_URL, _Revalidated(directory=STATIC), name="dashboard")
