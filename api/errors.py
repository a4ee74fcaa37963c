"""One JSON error shape for every failure the API returns, FastAPI's own included; the shape and
each status with its code: docs/api.md, "Errors".

Handlers raise `ApiError` or one of its kinds (NotFound, BadParameter, Unauthorized). The
engine's UnknownEntity (the routes look lines and machines up through `engine.plant`) is a 404
naming the path parameter, its BadRequest a 422; FastAPI's validation errors are a 422 with one
detail entry per problem; anything unexpected is a 500 `internal`, logged with its traceback (the
client gets no internals).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Sequence

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.models import ErrorBody, ErrorResponse, ProblemDetail
from storage.engine.errors import BadBucket, BadRequest, BadWindow, UnknownEntity

log = logging.getLogger(__name__)

SHOWN_CHARS = 60  # of a client's value echoed in a message
LISTED = 10  # unknown query parameters named one by one; the rest are counted


def shown(value: str) -> str:
    """`value` as a message quotes it: repr (control characters escaped), long ones cut."""
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"


def close_match(value: str, choices: Iterable[str]) -> str | None:
    """The choice `value` most likely meant, for a "did you mean": the same but for case (ids
    are case-sensitive; the config refuses two that differ only by case), else difflib's
    closest (a typo). None for a value longer than any choice could be near."""
    folded = {c.casefold(): c for c in choices}
    key = value.casefold()
    if key in folded:
        return folded[key]
    if len(key) > 2 * max(map(len, folded), default=0):
        return None
    near = difflib.get_close_matches(key, folded, n=1)
    return folded[near[0]] if near else None


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """A suffix `; did you mean 'x'?` when `close_match` finds one, else nothing."""
    match = close_match(value, choices)
    return f"; did you mean {match!r}?" if match is not None else ""


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
    429: "too_many_requests",
    500: "internal",
    503: "database_unavailable",
}


class ApiError(Exception):
    """An error the client should see as is."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: Sequence[ProblemDetail] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = list(detail)
        self.headers = headers

    def response(self) -> JSONResponse:
        body = ErrorBody(
            status=self.status, code=self.code, message=self.message, detail=self.detail
        )
        return JSONResponse(
            ErrorResponse(error=body).model_dump(mode="json"),
            status_code=self.status,
            headers=self.headers,
        )


class NotFound(ApiError):
    def __init__(self, message: str, loc: Sequence[str | int] = ()) -> None:
        detail = [ProblemDetail(loc=list(loc), msg=message, type="not_found")] if loc else []
        super().__init__(404, "not_found", message, detail)


class BadParameter(ApiError):
    """422 naming the parameter: `loc` like FastAPI's own (`["query", "start"]`)."""

    def __init__(self, loc: Sequence[str | int], message: str, kind: str = "value_error") -> None:
        name = loc[-1] if loc else "request"
        super().__init__(
            422,
            "invalid_parameter",
            f"{name}: {message}",
            [ProblemDetail(loc=list(loc), msg=message, type=kind)],
        )


class UnknownParameters(ApiError):
    """422 for query parameters the route does not declare (api.deps.refuse_unknown_query): a
    typo (`strat`) would otherwise be ignored and answer for the default window."""

    def __init__(self, unknown: Sequence[str], accepted: Sequence[str]) -> None:
        takes = ", ".join(accepted) if accepted else "no query parameters"
        detail = [
            ProblemDetail(
                loc=["query", name],
                msg=f"not a parameter of this route{did_you_mean(name, accepted)}",
                type="unknown_parameter",
            )
            for name in unknown[:LISTED]
        ]
        names = ", ".join(shown(name) for name in unknown[:LISTED])
        if len(unknown) > LISTED:
            names += f" and {len(unknown) - LISTED} more"
        plural = "s" if len(unknown) > 1 else ""
        meant = close_match(unknown[0], accepted) if len(unknown) == 1 else None
        hint = f" (did you mean {meant!r}?)" if meant is not None else ""
        message = f"unknown query parameter{plural} {names}{hint}; this route takes {takes}"
        super().__init__(422, "invalid_parameter", message, detail)


class Unauthorized(ApiError):
    def __init__(self, message: str, *, invalid: bool) -> None:
        challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
        super().__init__(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [
        ProblemDetail(
            loc=[str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
            msg=str(e.get("msg", "invalid")),
            type=str(e.get("type", "value_error")),
        )
        for e in exc.errors()
    ]
    first = detail[0] if detail else None
    where = first.loc[-1] if first and first.loc else "request"
    message = f"{where}: {first.msg}" if first else "invalid request"
    if len(detail) > 1:
        message += f" (and {len(detail) - 1} more)"
    return ApiError(422, "invalid_parameter", message, detail).response()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    if exc.status_code == 404 and exc.detail in (None, "Not Found"):
        message = f"no route {request.url.path!r}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path!r}"
    else:
        message = str(exc.detail)
    return ApiError(
        exc.status_code, code, message, headers=getattr(exc, "headers", None)
    ).response()


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return ApiError(
        503, "database_unavailable", "the database is not reachable; try again shortly"
    ).response()


async def _engine_unknown(request: Request, exc: Exception) -> JSONResponse:
    """An unknown line or machine: the path parameter of that name, and the configured id it
    is likely meant to be (`LINE1` for `line1`)."""
    assert isinstance(exc, UnknownEntity)
    cfg = request.app.state.cfg
    ids = [line.id for line in cfg.lines] if exc.kind == "line" else cfg.machines()
    message = f"no {exc.kind} {shown(exc.ident)}{did_you_mean(exc.ident, ids)}"
    return NotFound(message, ["path", exc.kind]).response()


async def _engine_bad_request(_: Request, exc: Exception) -> JSONResponse:
    where = (
        "bucket" if isinstance(exc, BadBucket) else "end" if isinstance(exc, BadWindow) else None
    )
    loc: list[str | int] = ["query", where] if where else ["query"]
    detail = [ProblemDetail(loc=loc, msg=str(exc), type="value_error")]
    return ApiError(422, "invalid_parameter", str(exc), detail).response()


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return ApiError(500, "internal", "internal error; the server log has the details").response()


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(UnknownEntity, _engine_unknown)
    app.add_exception_handler(BadRequest, _engine_bad_request)
    app.add_exception_handler(psycopg_pool.PoolTimeout, _database_error)
    app.add_exception_handler(psycopg.OperationalError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
