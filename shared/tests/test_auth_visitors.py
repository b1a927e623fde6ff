"""Visitors (跨省通办) at a service: a person signed in at node 440300 uses a service of node
310000 with 440300's token, checked against 440300's published keys and the central directory
(real HTTP throughout: the directory, both issuers' key sets, the service)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import PlainTextResponse

from tongban_kit.auth import AccessClaims, require
from tongban_kit.auth.node_keys import development_node_key, public_jwk
from tongban_kit.auth.node_trust import sign_directory
from tongban_kit.auth.testing import LocalIssuer, LocalKey
from tongban_kit.auth.visitors import is_visitor
from tongban_kit.infra import free_port
from tongban_kit.service import create_base_app
from tongban_kit.settings import BaseServiceSettings, NodeSettings
from tongban_kit.testing.apps import serving_app

PROBLEM = "application/problem+json"
router = APIRouter()


@router.get("/v1/my-applications")
async def my_applications(
    caller: Annotated[AccessClaims, Depends(require(principals=("person",)))],
) -> dict[str, Any]:
    return {
        "sub": caller.sub,
        "node": caller.node,
        "visitor": is_visitor(caller, "310000"),
        "scopes": sorted(caller.scopes),
        "business": caller.business,
    }


@router.get("/v1/reviews")
async def reviews(
    caller: Annotated[AccessClaims, Depends(require("registration:review"))],
) -> dict[str, str]:
    return {"sub": caller.sub}


@pytest.fixture
def home() -> Iterator[LocalIssuer]:
    """Node 440300's identity: its issuer is where it publishes its keys."""
    with LocalIssuer(node="440300", audience="tongban:440300") as issuer:
        issuer.issuer = issuer.jwks_url.removesuffix("/.well-known/jwks.json") + "/api/identity"
        yield issuer


@pytest.fixture
def local() -> Iterator[LocalIssuer]:
    with LocalIssuer(node="310000", audience="tongban:310000") as issuer:
        yield issuer


def node(code: str, token_issuer: str, status: str = "active") -> dict[str, Any]:
    return {
        "code": code,
        "name": code,
        "gateway_url": f"http://127.0.0.1:9/{code}",
        "token_issuer": token_issuer,
        "jwks": {"keys": [public_jwk(development_node_key(code))]},
        "status": status,
    }


@contextlib.asynccontextmanager
async def service_at_310000(
    local: LocalIssuer, nodes: list[dict[str, Any]]
) -> AsyncIterator[httpx.AsyncClient]:
    """Node 310000's service following central's directory of ``nodes`` (a list the test may
    change: central signs it afresh at each request)."""
    central = FastAPI()
    central.get("/directory.jwt", response_class=PlainTextResponse)(
        lambda: sign_directory(development_node_key("100000"), nodes)
    )
    async with serving_app(central) as central_url:
        settings = BaseServiceSettings(
            service_name="registration",
            node=NodeSettings(
                node_code="310000",
                log_format="text",
                token_issuer=local.issuer,
                jwks_url=local.jwks_url,
                directory_url=f"{central_url}/directory.jwt",
            ),
        )
        app = create_base_app(settings=settings, title="t", description="", routers=[router])
        async with serving_app(app) as url, httpx.AsyncClient(base_url=url) as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_a_visitor_signs_in_with_the_home_nodes_token_and_keeps_visitor_scopes_only(
    home: LocalIssuer, local: LocalIssuer
) -> None:
    token = home.mint(
        scope="openid profile registration:review tongban:admin exchange:approve",
        business="91440300MA5F00001X",
    )
    async with service_at_310000(local, [node("440300", home.issuer)]) as client:
        mine = await client.get("/v1/my-applications", headers=bearer(token))
        officer = await client.get("/v1/reviews", headers=bearer(token))
        own = await client.get(
            "/v1/my-applications", headers=bearer(local.mint(scope="registration:review"))
        )

    assert mine.status_code == 200, mine.text
    assert mine.json() == {
        "sub": "440300:person-7f3a",
        "node": "440300",
        "visitor": True,
        "scopes": ["openid", "profile"],
        "business": None,
    }
    assert officer.status_code == 403  # the officer scope was dropped
    assert own.status_code == 200
    assert own.json()["visitor"] is False


@pytest.mark.parametrize(
    ("listed", "minted", "reason"),
    [
        ("absent", {}, "not an active node of the directory"),
        ("suspended", {}, "not an active node of the directory"),
        ("active", {"key": "unpublished"}, "a key the issuer does not publish"),
        ("active", {"aud": "tongban:110000"}, "not meant for this service"),
        ("active", {"node": "110000"}, "'node' claim"),
        ("active", {"department": "tax-310000"}, "not departments"),
        ("active", {"exp": 1}, "expired"),
        ("active", {"sub": "p" * 101}, "too long"),
    ],
)
async def test_a_visitor_token_is_refused_unless_every_rule_holds(
    home: LocalIssuer, local: LocalIssuer, listed: str, minted: dict[str, Any], reason: str
) -> None:
    nodes = [] if listed == "absent" else [node("440300", home.issuer, status=listed)]
    if minted.pop("key", None):
        minted["key"] = LocalKey()
    token = home.mint(scope="openid", **minted)
    async with service_at_310000(local, nodes) as client:
        response = await client.get("/v1/my-applications", headers=bearer(token))

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert reason in response.json()["detail"]


async def test_a_node_enrolled_since_the_last_refresh_is_looked_up_at_once(
    home: LocalIssuer, local: LocalIssuer
) -> None:
    nodes: list[dict[str, Any]] = []
    async with service_at_310000(local, nodes) as client:
        nodes.append(node("440300", home.issuer))  # enrolled at central after our fetch
        response = await client.get("/v1/my-applications", headers=bearer(home.mint()))

    assert response.status_code == 200, response.text
    assert response.json()["visitor"] is True


async def test_without_a_directory_only_the_nodes_own_tokens_count(
    home: LocalIssuer, local: LocalIssuer
) -> None:
    settings = BaseServiceSettings(
        service_name="registration",
        node=NodeSettings(
            node_code="310000",
            log_format="text",
            token_issuer=local.issuer,
            jwks_url=local.jwks_url,
        ),
    )
    app = create_base_app(settings=settings, title="t", description="", routers=[router])
    async with serving_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/v1/my-applications", headers=bearer(home.mint()))

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


async def test_tongban_admin_is_never_a_visitor_scope() -> None:
    with pytest.raises(ValueError, match="never a visitor"):
        NodeSettings(visitor_scopes=["openid", "tongban:admin"])
    with pytest.raises(ValueError, match="http"):
        NodeSettings(directory_url="ftp://central/directory.jwt")


async def test_without_a_copy_of_the_directory_a_visitor_is_a_503_and_own_tokens_still_work(
    home: LocalIssuer, local: LocalIssuer
) -> None:
    settings = BaseServiceSettings(
        service_name="registration",
        node=NodeSettings(
            node_code="310000",
            log_format="text",
            token_issuer=local.issuer,
            jwks_url=local.jwks_url,
            directory_url=f"http://127.0.0.1:{free_port()}/directory.jwt",  # central down
        ),
    )
    app = create_base_app(settings=settings, title="t", description="", routers=[router])
    async with serving_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        visitor = await client.get("/v1/my-applications", headers=bearer(home.mint()))
        own = await client.get("/v1/my-applications", headers=bearer(local.mint()))

    assert visitor.status_code == 503, visitor.text
    assert visitor.headers["content-type"] == PROBLEM
    assert visitor.headers["retry-after"] == "60"
    assert own.status_code == 200
