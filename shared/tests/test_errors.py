"""Bad input gets a problem+json 4xx and writes nothing; a crash is a 500 that leaks nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request
from kit_app import KitService, notes, outbox, router
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tongban_kit.errors import install_problem_handlers
from tongban_kit.infra import free_port
from tongban_kit.service import create_service_app
from tongban_kit.settings import NodeSettings, ServiceSettings
from tongban_kit.testing import running_app

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        (b'{"title": "x"', 400, None),  # malformed JSON
        (b'{"title": 42}', 422, "/title"),  # wrong type
        (b'{"title": "x", "pages": "many"}', 422, "/pages"),  # wrong type, second field
        (b'{"title": "x", "status": "approved"}', 422, "/status"),  # unknown field, forbidden
        (b'{"title": ""}', 422, "/title"),  # too short
        (b"[]", 422, None),  # not an object
        (b"", 422, None),  # no body at all
    ],
)
async def test_bad_bodies_get_a_problem_and_write_nothing(
    kit_service: KitService, body: bytes, status: int, pointer: str | None
) -> None:
    response = await kit_service.client.post(
        "/notes", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["request_id"] == response.headers["x-request-id"]
    if pointer:
        assert pointer in [e["pointer"] for e in problem["errors"]]
    assert await kit_service.count(notes) == 0
    assert await kit_service.count(outbox) == 0


async def test_a_nul_character_in_text_is_a_422_and_writes_nothing(
    kit_service: KitService,
) -> None:
    response = await kit_service.client.post(
        "/notes",
        content=b'{"title": "nul\\u0000byte"}',  # PostgreSQL keeps no NUL in text
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/unstorable-value")
    assert await kit_service.count(notes) == 0
    assert await kit_service.count(outbox) == 0


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**40])
async def test_an_integer_the_database_cannot_hold_is_a_422(
    kit_service: KitService, number: int
) -> None:
    response = await kit_service.client.get("/notes", params={"longer_than": number})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/unstorable-value")


async def test_a_10_mb_body_is_refused_with_413_and_writes_nothing(
    kit_service: KitService,
) -> None:
    body = b'{"title": "' + b"x" * (10 * 1024 * 1024) + b'"}'

    response = await kit_service.client.post(
        "/notes", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["limit_bytes"] == kit_service.node.max_body_bytes
    assert await kit_service.count(notes) == 0


async def test_a_streamed_body_over_the_limit_is_refused_too(kit_service: KitService) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(12):
            yield b"x" * (1024 * 1024)

    response = await kit_service.client.post(
        "/notes", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_an_unexpected_error_is_a_500_problem_with_the_request_id_and_no_internals(
    kit_service: KitService,
) -> None:
    response = await kit_service.client.get("/boom", headers={"x-request-id": "req-123"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "req-123"
    assert response.json()["request_id"] == "req-123"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


async def test_unknown_paths_and_methods_are_problems(kit_service: KitService) -> None:
    missing = await kit_service.client.get("/no/such/thing")
    wrong_method = await kit_service.client.delete("/notes")

    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    assert (wrong_method.status_code, wrong_method.headers["content-type"]) == (405, PROBLEM)


async def test_a_malformed_request_id_is_replaced(kit_service: KitService) -> None:
    response = await kit_service.client.get("/healthz", headers={"x-request-id": "bad id\t!"})

    assert response.status_code == 200
    assert response.headers["x-request-id"] != "bad id\t!"
    assert len(response.headers["x-request-id"]) == 32


async def test_a_database_that_cannot_be_reached_is_a_503_to_retry_not_a_500(
    node_settings: NodeSettings,
) -> None:
    """PostgreSQL down or restarting: the caller is told to retry, not that the service broke."""
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone"
    settings = ServiceSettings(
        service_name="testkit", database_url=nowhere, node=node_settings, run_workers=False
    )
    app = create_service_app(settings=settings, title="kit", description="", routers=[router])

    async with running_app(app) as client:
        response = await client.post("/notes", json={"title": "written when the database is back"})

    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "1"
    assert "127.0.0.1" not in response.text  # nothing of the connection leaks


def _raising(error: BaseException) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/route")
    async def route() -> None:
        raise error

    @app.middleware("http")
    async def checkout(request: Request, call_next: Any) -> Any:
        # A session opened outside the routes (as an auth or rate-limit middleware would).
        if request.url.path == "/middleware":
            raise error
        return await call_next(request)

    return app


def _wrapped(orig: Exception) -> DBAPIError:
    """What SQLAlchemy raises for an asyncpg error that is not a DB-API error."""
    return DBAPIError("SELECT 1", None, orig)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        _wrapped(asyncpg.CannotConnectNowError("the database system is shutting down")),
        _wrapped(asyncpg.TooManyConnectionsError("sorry, too many clients already")),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
        PoolTimeout("QueuePool limit of size 10 overflow 10 reached"),
    ],
    ids=lambda e: (
        type(e).__name__ + ("(" + type(e.orig).__name__ + ")" if hasattr(e, "orig") else "")
    ),
)
@pytest.mark.parametrize("where", ["/route", "/middleware"])
async def test_a_database_lost_at_checkout_or_mid_transaction_is_a_503_wherever_raised(
    error: BaseException, where: str
) -> None:
    transport = httpx.ASGITransport(app=_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(where)

    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "1"


async def test_a_database_error_that_is_a_bug_stays_a_500() -> None:
    error = _wrapped(asyncpg.UndefinedColumnError('column "nope" does not exist'))
    transport = httpx.ASGITransport(app=_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/route")

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
