"""What the API serves to a browser, from package files and nothing outside the API process (a
plant network has no internet): the dashboard at `/` (api.dashboard.page, docs/dashboard.md) and
the API reference at /docs and /redoc (api.dashboard.docs).

The dashboard is one more client of the JSON API: it holds no KPI logic and reads nothing but
/api/v1, so it needs no key of its own and no build step.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.dashboard import docs, page

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the dashboard and the reference pages to `app` (created with docs_url=None and
    redoc_url=None, so FastAPI's CDN pages are not there too)."""
    page.install(app)
    docs.install(app)
