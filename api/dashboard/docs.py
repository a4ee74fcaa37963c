"""/docs (Swagger UI) and /redoc from fastapi-offline's package files instead of a CDN: an edge PC
has no internet.

Both pages carry a Content-Security-Policy that allows nothing but this origin (plus inline
code, data: and blob: URLs, which the two UIs use). ReDoc's side menu shows Redocly's logo from
cdn.redoc.ly whatever its options say; the policy makes the browser skip that request instead
of sending it out (the logo hides itself when it does not load). Swagger UI's validator badge,
which would send the spec to validator.swagger.io, is turned off.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static/docs"
POLICY = "default-src 'self' 'unsafe-inline' data: blob:"

router = APIRouter(include_in_schema=False)


def _local(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = POLICY
    return response


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return _local(
        get_swagger_ui_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return _local(
        get_redoc_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs")
