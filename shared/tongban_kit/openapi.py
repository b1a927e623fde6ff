"""Every service's OpenAPI document names its refusals: RFC 9457 problem+json, per route.

FastAPI documents what a route returns when it succeeds and a ``422`` in its own
``HTTPValidationError`` shape; the kit answers every refusal as ``application/problem+json``
(``tongban_kit.errors``). ``install_problem_docs`` rewrites the generated document so that it
says what the service does: a ``ProblemDetails`` schema, and on each operation the error
statuses it can return, chosen from what the route takes:

    every route            404 (an unknown id, or a path the node does not serve), 429, 503
    POST, PUT, PATCH, DELETE  409 (an illegal state transition, a uniqueness rule)
    a request body         400 (malformed), 413 (over the body limit), 415
    parameters or a body   422 (validation)
    a security scheme      401, 403

A route states anything else it can return in its decorator's ``responses`` (for a refusal,
``responses=problem_responses(401, 403)``); what it states is kept. Fuzzing
(``tests/test_fuzz.py``) holds every service to its document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tongban_kit.errors import PROBLEM_JSON

__all__ = [
    "PROBLEM_SCHEMA",
    "document_problems",
    "install_problem_docs",
    "problem_responses",
]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_REF = "#/components/schemas/ProblemDetails"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ProblemDetails",
    "description": "An RFC 9457 problem: why the request was refused. Nothing was changed.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem."},
        "title": {"type": "string", "description": "A short summary of the kind of problem."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "What went wrong with this request."},
        "instance": {"type": "string", "description": "The path the request was sent to."},
        "request_id": {"type": "string", "description": "Quote it when reporting a problem."},
        "errors": {
            "type": "array",
            "description": "On a validation failure: one entry per field that failed.",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": ["string", "null"]},
                    "location": {"type": "array", "items": {"type": "string"}},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

_DESCRIPTIONS = {
    400: "Malformed request (the body is not valid JSON, or makes no sense).",
    401: "No bearer token, or one that is invalid or expired.",
    403: "The token lacks the scope, role or level of assurance this route needs.",
    404: "No such object for this caller, or no such path.",
    409: "A uniqueness rule or an illegal state transition.",
    413: "The request body is over the node's limit.",
    415: "The request body is not in a media type this route reads.",
    422: "A parameter or a field of the body failed validation.",
    429: "Too many requests; `Retry-After` says when to try again.",
    503: "A dependency (database, identity's keys) is unavailable; retry shortly.",
}


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF}}},
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` for refusals the kit cannot tell from its signature (a route
    that authenticates its caller itself: 401, 403)."""
    return {status: _problem(status) for status in statuses}


def _statuses(method: str, operation: dict[str, Any], secured: bool) -> list[int]:
    statuses = [404, 429, 503]
    if method in ("post", "put", "patch", "delete"):
        statuses.append(409)
    if operation.get("requestBody"):
        statuses += [400, 413, 415, 422]
    if operation.get("parameters"):
        statuses.append(422)
    if secured:
        statuses += [401, 403]
    return sorted(set(statuses))


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (changed in place and returned) with ``ProblemDetails`` and each
    operation's error responses; FastAPI's own 422 schema is replaced, not kept beside it."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ProblemDetails"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    secured_by_default = bool(document.get("security"))
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            secured = bool(operation.get("security", secured_by_default))
            responses: dict[str, Any] = operation.setdefault("responses", {})
            generated_422 = responses.get("422", {}).get("content", {}).get("application/json")
            if generated_422 is not None:
                del responses["422"]
            for status in _statuses(method, operation, secured):
                responses.setdefault(str(status), _problem(status))
    return document


def install_problem_docs(app: FastAPI) -> None:
    """Serve ``app``'s generated document with its problems documented (built once)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
