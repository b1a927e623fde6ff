"""Token checks at the edge: refused before any service sees the request; 503 when identity's
keys cannot be had; public routes need no token."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from tongban_kit.auth.testing import LocalIssuer, LocalKey
from tongban_kit.settings import NodeSettings

if TYPE_CHECKING:
    from conftest import OpenGateway, StandIn


def unique(prefix: str = "/v1/probe") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(issuer: LocalIssuer) -> str:
    """The issuer's claims with ``alg: none`` and no signature."""
    header = {"alg": "none", "typ": "at+jwt", "kid": issuer.key.kid}
    return f"{_b64(header)}.{_b64(issuer.claims())}."


def forged(issuer: LocalIssuer) -> str:
    """Signed by a key the issuer does not publish, under the published key's id."""
    return issuer.mint(key=LocalKey(kid=issuer.key.kid))


def expired(issuer: LocalIssuer) -> str:
    now = int(time.time())
    return issuer.mint(iat=now - 900, nbf=now - 900, exp=now - 600)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (forged, "signature does not verify"),
        (expired, "expired"),
        (unsigned, "algorithm 'none'"),
        (lambda _: "not-a-jwt", "not a well-formed JWS"),
    ],
)
async def test_a_bad_token_is_refused_at_the_edge(
    gateway: httpx.AsyncClient,
    ready: dict[str, StandIn],
    token_issuer: LocalIssuer,
    make: object,
    reason: str,
) -> None:
    path = unique()
    token = make(token_issuer)  # type: ignore[operator]

    response = await gateway.get(
        f"/api/exchange{path}", headers={"authorization": f"Bearer {token}"}
    )

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert reason in response.json()["detail"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert ready["exchange"].saw(path) == []


async def test_no_token_is_a_bare_challenge(
    gateway: httpx.AsyncClient, ready: dict[str, StandIn]
) -> None:
    path = unique()
    del gateway.headers["authorization"]

    response = await gateway.post(f"/api/registration{path}", json={})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="tongban"'
    assert ready["registration"].saw(path) == []


async def test_a_valid_token_is_forwarded_untouched(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/api/exchange/v1/records/businesses/x")

    assert response.status_code == 200
    assert response.json()["headers"]["authorization"] == gateway.headers["authorization"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/identity/v1/persons"),
        ("POST", "/api/identity/v1/login"),
        ("POST", "/api/identity/oauth/token"),
        ("POST", "/api/identity/oauth/revoke"),
        ("GET", "/api/identity/.well-known/jwks.json"),
        ("GET", "/api/identity/.well-known/openid-configuration"),
        ("GET", "/api/identity/v1/legal-persons/91440300MA5FXXXX0X"),
        ("GET", "/api/registration/v1/businesses/91440300MA5FXXXX0X"),
        ("GET", "/api/registration/v1/licences/verify?code=abc"),
        ("GET", "/api/exchange/healthz"),
    ],
)
async def test_public_routes_work_without_a_token(
    gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    del gateway.headers["authorization"]

    response = await gateway.request(method, path)

    assert response.status_code == 200
    assert "authorization" not in response.json()["headers"]


async def test_identity_failing_is_a_503_for_protected_routes_not_a_401(
    open_gateway: OpenGateway, node_trusting: Callable[..., NodeSettings]
) -> None:
    with LocalIssuer() as identity:
        identity.status = 503  # identity answers, but cannot give its keys
        node = node_trusting(token_issuer=identity.issuer, jwks_url=identity.jwks_url)
        async with open_gateway(node=node) as gateway:
            token = identity.mint()
            protected = await gateway.get(
                "/api/exchange/v1/x", headers={"authorization": f"Bearer {token}"}
            )
            public = await gateway.get(
                "/api/identity/.well-known/jwks.json", headers={"authorization": ""}
            )

    assert protected.status_code == 503
    assert protected.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" not in protected.headers
    assert public.status_code == 200


async def test_identity_down_is_a_503_for_protected_routes(
    open_gateway: OpenGateway, node_trusting: Callable[..., NodeSettings], dead_url: str
) -> None:
    identity = LocalIssuer()
    token = identity.mint()
    node = node_trusting(token_issuer=identity.issuer, jwks_url=f"{dead_url}/jwks.json")
    async with open_gateway(node=node) as gateway:
        response = await gateway.get(
            "/api/exchange/v1/x", headers={"authorization": f"Bearer {token}"}
        )

    assert response.status_code == 503
    assert "identity" in response.json()["detail"]
