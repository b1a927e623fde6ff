"""Domain errors and their one mapping to RFC 9457 ``application/problem+json``.

    TongbanError            any error a service raises on purpose; carries an HTTP status
    ├── BadRequest          400  the request is well-formed JSON but makes no sense
    ├── Unauthorized        401  no or bad credentials
    ├── Forbidden           403  credentials fine, permission missing
    ├── NotFound            404
    ├── Conflict            409  a uniqueness rule or an illegal state transition
    ├── PayloadTooLarge     413
    ├── UnsupportedMediaType 415
    └── ServiceUnavailable  503  a dependency is down

A database that cannot be reached (refused, restarting, shut down, a connection dropped at
checkout or mid-transaction, the pool exhausted while it hangs) is a 503 with ``Retry-After``,
wherever it is raised (``database_unavailable`` decides). A value the database cannot hold (a
NUL character in text, an integer past 64 bits, a string longer than its column) is the
caller's error, not the server's: 422 ``unstorable-value``, whichever route it came through,
and the request's transaction is rolled back. Anything else that escapes a handler is a 500
whose body names only the request id; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from asyncpg.exceptions._base import DataError as QueryArgumentError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from tongban_kit.observability.context import current_request_id

__all__ = [
    "PROBLEM_JSON",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TongbanError",
    "Unauthorized",
    "UnsupportedMediaType",
    "database_unavailable",
    "install_problem_handlers",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://tongban.gov.cn/problems/"
logger = logging.getLogger("tongban.errors")


class TongbanError(Exception):
    """An error with an HTTP status, a stable problem type and a human-readable detail."""

    status: int = 500
    title: str = "Internal Server Error"
    type_slug: str = "internal"

    headers: dict[str, str] | None = None

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        if headers is not None:
            self.headers = headers


class BadRequest(TongbanError):
    status, title, type_slug = 400, "Bad Request", "bad-request"


class Unauthorized(TongbanError):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"


class Forbidden(TongbanError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class NotFound(TongbanError):
    status, title, type_slug = 404, "Not Found", "not-found"


class Conflict(TongbanError):
    status, title, type_slug = 409, "Conflict", "conflict"


class PayloadTooLarge(TongbanError):
    status, title, type_slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMediaType(TongbanError):
    status, title, type_slug = 415, "Unsupported Media Type", "unsupported-media-type"


class ServiceUnavailable(TongbanError):
    status, title, type_slug = 503, "Service Unavailable", "service-unavailable"


# SQLSTATE classes of an unreachable server: 08 connection exception, 57P operator
# intervention (admin or crash shutdown, "the database system is starting up"), 53300 too many
# connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) says the database cannot be reached
    just now, as opposed to a bug: a refused or dropped connection, a server starting up or
    shutting down, a connect or pool checkout timing out.

    asyncpg's errors at connection checkout reach us unwrapped, or wrapped in a bare
    ``DBAPIError``, so the whole cause chain is looked at.
    """
    if isinstance(exc, Exception) and _unstorable_value(exc):
        return False  # asyncpg reports an int past 64 bits as an InterfaceError
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and (
            current.connection_invalidated or isinstance(current, OperationalError | InterfaceError)
        ):
            return True
        if isinstance(current, OSError | TimeoutError | PoolTimeout):
            return True
        if isinstance(current, asyncpg.InterfaceError | asyncpg.PostgresConnectionError):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
        )
    return False


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_slug: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Build one ``application/problem+json`` response; every error body goes through here."""
    body: dict[str, Any] = {
        "type": _TYPE_BASE + type_slug if type_slug else "about:blank",
        "title": title,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        errors.append(
            {
                # "body" is how FastAPI says "the JSON document"; the pointer says where in it.
                "pointer": "/" + "/".join(location[1:])
                if location[:1] == ["body"] and error.get("type") != "json_invalid"
                else None,
                "location": location,
                "message": error.get("msg", "invalid"),
                "code": error.get("type", "invalid"),
            }
        )
    return errors


async def _on_tongban_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TongbanError)
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        type_slug=exc.type_slug,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extensions,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    malformed = any(e["code"] == "json_invalid" for e in errors)
    return problem_response(
        400 if malformed else 422,
        "Malformed JSON" if malformed else "Validation failed",
        "The request body is not valid JSON."
        if malformed
        else f"{len(errors)} field(s) failed validation.",
        type_slug="malformed-json" if malformed else "validation",
        instance=request.url.path,
        errors=errors,
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(
        exc.status_code,
        title,
        detail,
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Also reached from outside the routes (a middleware or dependency that opened a session).
    if database_unavailable(exc):
        return _database_unavailable(request, exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500,
        "Internal Server Error",
        "The server could not complete the request; quote the request id when reporting it.",
        type_slug="internal",
        instance=request.url.path,
    )


def _unstorable_value(exc: Exception) -> bool:
    """A value PostgreSQL refuses (SQLSTATE class 22, data exception: NUL in text, numeric out
    of range, string too long) or that asyncpg cannot encode (an int past 64 bits)."""
    seen: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy's error, the adapted DBAPI error, asyncpg's
        if seen is None:
            return False
        if isinstance(seen, QueryArgumentError):
            return True
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if _unstorable_value(exc):
        logger.info(
            "unstorable value on %s %s: %s", request.method, request.url.path, type(exc).__name__
        )
        return problem_response(
            422,
            "Validation failed",
            "A value in the request cannot be stored (a NUL character, a number out of range "
            "or a text too long).",
            type_slug="unstorable-value",
            instance=request.url.path,
        )
    # Any other database error that does not say the database is unreachable is a bug: a 500.
    if not database_unavailable(exc):
        return await _on_unexpected(request, exc)
    return _database_unavailable(request, exc)


def _database_unavailable(request: Request, exc: BaseException) -> JSONResponse:
    # Unreachable, restarting or shutting down: the request may well succeed in a moment, so a
    # 503 the caller can retry.
    logger.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return problem_response(
        503,
        "Service Unavailable",
        "The service's database cannot be reached just now; retry shortly.",
        type_slug="service-unavailable",
        instance=request.url.path,
        headers={"Retry-After": "1"},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error a service can raise to problem+json, once, for the whole app."""
    app.add_exception_handler(TongbanError, _on_tongban_error)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(OSError, _on_database_error)
    app.add_exception_handler(TimeoutError, _on_database_error)
    app.add_exception_handler(PoolTimeout, _on_database_error)
    app.add_exception_handler(asyncpg.PostgresError, _on_database_error)
    app.add_exception_handler(asyncpg.InterfaceError, _on_database_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
