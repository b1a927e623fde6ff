"""Visitors (跨省通办) through the gateway: a person signed in at node 310000 uses node
440300's services with 310000's token. The gateway and the service behind it (a kit service
served on a real port) both follow the signed directory and agree on every answer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import PlainTextResponse

from tongban_kit.auth import AccessClaims, require
from tongban_kit.auth.node_keys import development_node_key, public_jwk
from tongban_kit.auth.node_trust import sign_directory
from tongban_kit.auth.testing import LocalIssuer, LocalKey
from tongban_kit.auth.visitors import is_visitor
from tongban_kit.service import create_base_app
from tongban_kit.settings import BaseServiceSettings, NodeSettings
from tongban_kit.testing.apps import serving_app

if TYPE_CHECKING:
    from conftest import OpenGateway

PROBLEM = "application/problem+json"
SEEN: list[str] = []
router = APIRouter()


@router.get("/v1/applications")
async def own_applications(
    caller: Annotated[AccessClaims, Depends(require(principals=("person",)))],
) -> dict[str, Any]:
    SEEN.append(caller.sub)
    visitor = is_visitor(caller, "440300")
    return {"node": caller.node, "visitor": visitor, "scopes": sorted(caller.scopes)}


@router.get("/v1/reviews")
async def reviews(
    caller: Annotated[AccessClaims, Depends(require("registration:review"))],
) -> dict[str, str]:
    return {"sub": caller.sub}


@pytest.fixture
def shanghai() -> Iterator[LocalIssuer]:
    """Node 310000's identity, publishing its keys under its issuer URL."""
    with LocalIssuer(node="310000", audience="tongban:310000") as issuer:
        issuer.issuer = issuer.jwks_url.removesuffix("/.well-known/jwks.json") + "/api/identity"
        yield issuer


def directory(shanghai: LocalIssuer, status: str | None) -> str:
    nodes = [
        {
            "code": code,
            "name": code,
            "gateway_url": f"http://127.0.0.1:9/{code}",
            "token_issuer": issuer,
            "jwks": {"keys": [public_jwk(development_node_key(code))]},
            "status": "active",
        }
        for code, issuer in [("440300", "https://identity.test/api/identity")]
    ]
    if status is not None:
        nodes.append({**nodes[0], "code": "310000", "token_issuer": shanghai.issuer})
        nodes[-1]["status"] = status
    return sign_directory(development_node_key("100000"), nodes)


@contextlib.asynccontextmanager
async def node_440300(
    open_gateway: OpenGateway,
    node_trusting: Callable[..., NodeSettings],
    document: str,
) -> AsyncIterator[httpx.AsyncClient]:
    """Central serving ``document``, a registration service and the gateway, all following it."""
    central = FastAPI()
    central.get("/directory.jwt", response_class=PlainTextResponse)(lambda: document)
    async with serving_app(central) as central_url:
        node = node_trusting(directory_url=f"{central_url}/directory.jwt")
        service = create_base_app(
            settings=BaseServiceSettings(service_name="registration", node=node),
            title="registration",
            description="",
            routers=[router],
        )
        async with (
            serving_app(service) as service_url,
            open_gateway(node=node, registration_url=service_url) as gateway,
        ):
            del gateway.headers["authorization"]
            SEEN.clear()
            yield gateway


async def test_a_visitor_is_let_through_and_served_with_visitor_scopes(
    open_gateway: OpenGateway, node_trusting: Callable[..., NodeSettings], shanghai: LocalIssuer
) -> None:
    token = shanghai.mint(sub="person-sh", scope="openid profile registration:review tongban:admin")
    headers = {"authorization": f"Bearer {token}"}
    async with node_440300(open_gateway, node_trusting, directory(shanghai, "active")) as gateway:
        mine = await gateway.get("/api/registration/v1/applications", headers=headers)
        again = await gateway.get("/api/registration/v1/applications", headers=headers)
        officer = await gateway.get("/api/registration/v1/reviews", headers=headers)

    assert mine.status_code == 200, mine.text
    assert mine.json() == {"node": "310000", "visitor": True, "scopes": ["openid", "profile"]}
    assert again.status_code == 200
    assert officer.status_code == 403  # the officer scope stayed at home
    assert SEEN == ["310000:person-sh", "310000:person-sh"]  # its home code in front


@pytest.mark.parametrize(
    ("status", "signer", "reason"),
    [
        (None, None, "not an active node of the directory"),
        ("suspended", None, "not an active node of the directory"),
        ("active", LocalKey(), "a key the issuer does not publish"),
    ],
    ids=["not-in-the-directory", "suspended", "unpublished-key"],
)
async def test_a_visitor_token_is_refused_at_the_edge_unless_the_directory_vouches(
    open_gateway: OpenGateway,
    node_trusting: Callable[..., NodeSettings],
    shanghai: LocalIssuer,
    status: str | None,
    signer: LocalKey | None,
    reason: str,
) -> None:
    token = shanghai.mint(sub="person-sh", key=signer)
    async with node_440300(open_gateway, node_trusting, directory(shanghai, status)) as gateway:
        response = await gateway.get(
            "/api/registration/v1/applications", headers={"authorization": f"Bearer {token}"}
        )

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert reason in response.json()["detail"]
    assert SEEN == []  # never forwarded
