"""The require() dependency on a small service wired the documented way: 401 with a bearer
challenge for no or bad tokens, 403 for a missing scope, 401 naming the level for step-up."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from tongban_kit.auth import (
    AccessClaims,
    require,
    token_verification,
)
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.infra import free_port
from tongban_kit.service import create_base_app
from tongban_kit.settings import BaseServiceSettings, NodeSettings
from tongban_kit.testing import running_app

PROBLEM = "application/problem+json"
router = APIRouter()


@router.get("/records")
async def read_records(
    caller: Annotated[AccessClaims, Depends(require("records:read"))],
) -> dict[str, str]:
    return {"sub": caller.sub}


@router.get("/records/sealed")
async def read_sealed_records(
    caller: Annotated[AccessClaims, Depends(require("records:read", min_acr="substantial"))],
) -> dict[str, str]:
    return {"sub": caller.sub}


@router.delete("/records")
async def delete_records(
    caller: Annotated[AccessClaims, Depends(require("records:delete"))],
) -> dict[str, str]:
    return {"sub": caller.sub}


def records_app(issuer: LocalIssuer, jwks_url: str | None = None) -> FastAPI:
    """A service wired by hand: the key cache in its own lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with token_verification(
            app,
            jwks_url=jwks_url or issuer.jwks_url,
            issuer=issuer.issuer,
            audience=issuer.audience,
        ):
            yield

    settings = BaseServiceSettings(service_name="records", node=NodeSettings(log_format="text"))
    return create_base_app(
        settings=settings,
        title="records",
        description="",
        routers=[router],
        lifespan=lifespan,
        verify_tokens=False,  # wired by hand above
    )


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture
async def client(issuer: LocalIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(records_app(issuer)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_a_good_token_gets_through_with_its_claims(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await client.get("/records", headers=bearer(issuer.mint(scope="records:read")))

    assert response.status_code == 200
    assert response.json() == {"sub": "person-7f3a"}


async def test_no_token_is_a_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/records")

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["www-authenticate"]  # RFC 6750 §3.1: no credentials


async def test_another_scheme_than_bearer_is_a_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/records", headers={"authorization": "Basic dXNlcjpwdw=="})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_bad_token_is_a_401_invalid_token(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scope="records:read", aud="somewhere-else")

    response = await client.get("/records", headers=bearer(token))

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "not meant for this service" in response.json()["detail"]


async def test_a_missing_scope_is_a_403_insufficient_scope(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await client.delete("/records", headers=bearer(issuer.mint(scope="records:read")))

    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="records:delete"' in challenge
    assert response.json()["required_scopes"] == ["records:delete"]


async def test_too_low_a_level_of_assurance_is_a_401_naming_the_level_needed(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scope="records:read", acr="low")

    response = await client.get("/records/sealed", headers=bearer(token))

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="substantial"' in challenge
    assert response.json()["required_acr"] == "substantial"


async def test_a_higher_level_of_assurance_than_required_is_enough(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scope="records:read", acr="high")

    response = await client.get("/records/sealed", headers=bearer(token))

    assert response.status_code == 200


async def test_identity_down_is_a_503_for_the_caller(issuer: LocalIssuer) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"

    async with running_app(records_app(issuer, unreachable)) as client:
        response = await client.get("/records", headers=bearer(issuer.mint(scope="records:read")))

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
