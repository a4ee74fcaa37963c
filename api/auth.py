"""Bearer-token check for /api/v1 against `settings.api.api_keys`.

Without keys there is no authentication (api.app does not even add this dependency, so the
OpenAPI document declares no security), and `api.server.serve` binds to loopback only, so an
unauthenticated API is never reachable from the network. Tokens are compared with
`hmac.compare_digest` against every key, so the time taken says nothing about a key's prefix.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="one of `settings.api.api_keys`")


def _matches(token: str, keys: list[bytes]) -> bool:
    given = token.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency of every /api/v1 route: 401 unless a configured key is presented."""
    keys: list[bytes] = request.app.state.api_keys
    if not keys:
        return
    if credentials is None:
        raise Unauthorized(
            "missing bearer token: send 'Authorization: Bearer <key>'", invalid=False
        )
    if not _matches(credentials.credentials, keys):
        raise Unauthorized("the bearer token is not a configured API key", invalid=True)
