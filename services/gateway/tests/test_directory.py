"""The central directory at the gateway: fetched and checked, cached on disk, its age reported;
other nodes found in it; their assertions checked against it; businesses of other nodes'
divisions routed to them."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tongban_gateway.config import RouteConfigError
from tongban_gateway.main import create_app
from tongban_gateway.settings import GatewaySettings
from tongban_kit.auth.node_keys import development_node_key, node_identifier, public_jwk
from tongban_kit.settings import NodeSettings
from tongban_kit.testing.apps import serving_app

if TYPE_CHECKING:
    from conftest import OpenGateway, StandIn

CENTRAL = development_node_key("100000")
SHANGHAI = development_node_key("310000")
SHANGHAI_USCC = "91310000MA1FL0001X"
OWN_USCC = "91440300MA5F00001X"


def entry(code: str, url: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return {
        "code": code,
        "name": code,
        "gateway_url": url,
        "token_issuer": f"{url}/api/identity",
        "jwks": {"keys": [public_jwk(key)]},
        "status": "active",
    }


def signed_directory(
    nodes: list[dict[str, Any]], *, age_s: int = 0, key: ec.EllipticCurvePrivateKey = CENTRAL
) -> str:
    iat = int(time.time()) - age_s
    claims = {"iss": "tongban:node:100000", "iat": iat, "exp": iat + 600, "nodes": nodes}
    headers = {"kid": public_jwk(key)["kid"], "typ": "tongban-directory+jwt"}
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def assertion(
    key: ec.EllipticCurvePrivateKey,
    code: str = "310000",
    *,
    age_s: int = 0,
    lifetime_s: int = 60,
    jti: str | None = None,
) -> str:
    iat = int(time.time()) - age_s
    claims = {
        "iss": node_identifier(code),
        "sub": node_identifier(code),
        "aud": node_identifier("440300"),
        "iat": iat,
        "exp": iat + lifetime_s,
        "jti": jti or uuid.uuid4().hex,
    }
    headers = {"kid": public_jwk(key)["kid"], "typ": "tongban-node+jwt"}
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


class Central:
    """The central node's directory endpoint: serves ``document`` while ``up``."""

    def __init__(self) -> None:
        self.document = ""
        self.up = True
        self.url = ""

    def app(self) -> Any:
        async def directory(request: Request) -> Response:
            if not self.up:
                return Response(status_code=503)
            return Response(self.document, media_type="application/jwt")

        return Starlette(routes=[Route("/directory.jwt", directory)])


@pytest.fixture
async def central(ready: dict[str, StandIn]) -> AsyncIterator[Central]:
    state = Central()
    state.document = signed_directory(
        [
            entry("100000", "http://127.0.0.1:9", CENTRAL),
            entry("310000", ready["exchange"].url + "/node-310000", SHANGHAI),
        ]
    )
    async with serving_app(state.app()) as url:
        state.url = url + "/directory.jwt"
        yield state


async def test_a_business_of_another_division_is_answered_by_its_node(
    open_gateway: OpenGateway, central: Central, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    async with open_gateway(
        directory_url=central.url, directory_cache_file=tmp_path / "directory.jwt"
    ) as gateway:
        del gateway.headers["authorization"]  # public routes: no token needed
        remote = await gateway.get(f"/api/registration/v1/businesses/{SHANGHAI_USCC}")
        verify = await gateway.get(f"/api/registration/v1/licences/verify?uscc={SHANGHAI_USCC}")
        own = await gateway.get(f"/api/registration/v1/businesses/{OWN_USCC}")
        readiness = (await gateway.get("/readyz")).json()
        metrics = (await gateway.get("/metrics")).text

    assert remote.status_code == 200, remote.text
    seen = remote.json()
    assert seen["path"] == f"/node-310000/api/registration/v1/businesses/{SHANGHAI_USCC}"
    claims = jwt.decode(
        seen["headers"]["tongban-node-assertion"],
        development_node_key("440300").public_key(),
        algorithms=["ES256"],
        audience="tongban:node:310000",
    )
    assert claims["iss"] == "tongban:node:440300"
    assert verify.json()["path"] == "/node-310000/api/registration/v1/licences/verify"
    assert own.json()["path"] == f"/v1/businesses/{OWN_USCC}"
    details = readiness["details"]["directory"]
    assert details["valid"] is True
    assert 0 <= details["age_s"] < 60
    assert details["nodes"] == ["100000", "310000"]
    assert (tmp_path / "directory.jwt").read_text() == central.document
    (age,) = [line for line in metrics.splitlines() if line.startswith("tongban_directory_age")]
    assert 0 <= float(age.split()[-1]) < 60


async def test_with_central_down_the_cached_copy_keeps_the_node_working(
    open_gateway: OpenGateway, central: Central, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    cache = tmp_path / "directory.jwt"
    cache.write_text(central.document)
    central.up = False

    async with open_gateway(directory_url=central.url, directory_cache_file=cache) as gateway:
        routed = await gateway.get("/nodes/310000/api/x")
        readiness = (await gateway.get("/readyz")).json()

    assert routed.status_code == 200
    assert routed.json()["path"] == "/node-310000/api/x"
    assert readiness["status"] == "ready"
    assert readiness["details"]["directory"]["valid"] is True
    assert "503" in readiness["details"]["directory"]["last_error"]


async def test_an_expired_copy_stops_node_to_node_traffic_only(
    open_gateway: OpenGateway, central: Central, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    cache = tmp_path / "directory.jwt"
    cache.write_text(
        signed_directory(
            [entry("310000", ready["exchange"].url + "/node-310000", SHANGHAI)], age_s=700
        )
    )
    central.up = False

    async with open_gateway(directory_url=central.url, directory_cache_file=cache) as gateway:
        remote = await gateway.get(f"/api/registration/v1/businesses/{SHANGHAI_USCC}")
        own = await gateway.get(f"/api/registration/v1/businesses/{OWN_USCC}")

    assert remote.status_code == 503
    assert remote.headers["content-type"] == "application/problem+json"
    assert own.status_code == 200


async def test_a_directory_not_signed_by_central_is_refused(
    open_gateway: OpenGateway, central: Central, tmp_path: Path
) -> None:
    central.document = signed_directory(
        [entry("310000", "http://127.0.0.1:9", SHANGHAI)], key=SHANGHAI
    )

    async with open_gateway(directory_url=central.url) as gateway:
        routed = await gateway.get("/nodes/310000/x")
        details = (await gateway.get("/readyz")).json()["details"]["directory"]

    assert routed.status_code == 503
    assert details["valid"] is False
    assert "central node's key" in details["last_error"]


async def test_node_assertions_are_checked_against_the_directory(
    open_gateway: OpenGateway, central: Central, ready: dict[str, StandIn]
) -> None:
    replayed = assertion(SHANGHAI)
    cases = {
        "valid": assertion(SHANGHAI),
        "wrong key": assertion(ec.generate_private_key(ec.SECP256R1())),
        "expired": assertion(SHANGHAI, age_s=200),
        "too long": assertion(SHANGHAI, lifetime_s=3600),
        "unknown node": assertion(development_node_key("120000"), "120000"),
        "not a jwt": "junk",
    }
    path = f"/api/registration/v1/businesses/{SHANGHAI_USCC}"
    async with open_gateway(directory_url=central.url) as gateway:
        del gateway.headers["authorization"]
        answers = {
            name: await gateway.get(path, headers={"tongban-node-assertion": value})
            for name, value in cases.items()
        }
        first = await gateway.get(path, headers={"tongban-node-assertion": replayed})
        second = await gateway.get(path, headers={"tongban-node-assertion": replayed})

    # A request from another node is answered here, never sent on: no loop between nodes.
    assert answers.pop("valid").json()["path"] == f"/v1/businesses/{SHANGHAI_USCC}"
    assert first.status_code == 200
    for name, answer in [*answers.items(), ("replayed", second)]:
        assert answer.status_code == 401, name
        assert answer.headers["content-type"] == "application/problem+json", name
    assert "replay" in second.json()["detail"]
    assert "expired" in answers["expired"].json()["detail"]
    assert "not an active node" in answers["unknown node"].json()["detail"]


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_namespace() -> AsyncIterator[str]:
    """A topic namespace of the test's own, so its replay keys in Redis are its own; they are
    deleted afterwards."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield namespace
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_an_assertion_one_gateway_took_is_a_replay_at_another_sharing_redis(
    open_gateway: OpenGateway,
    central: Central,
    node_trusting: Callable[..., NodeSettings],
    redis_namespace: str,
) -> None:
    shared = {
        "directory_url": central.url,
        "redis_url": REDIS_URL,
        "node": node_trusting(kafka_namespace=redis_namespace),
    }
    once = assertion(SHANGHAI)
    path = f"/api/registration/v1/businesses/{SHANGHAI_USCC}"
    async with open_gateway(**shared) as first, open_gateway(**shared) as second:
        del first.headers["authorization"], second.headers["authorization"]
        taken = await first.get(path, headers={"tongban-node-assertion": once})
        replayed = await second.get(path, headers={"tongban-node-assertion": once})

    assert taken.status_code == 200, taken.text
    assert replayed.status_code == 401
    assert replayed.headers["content-type"] == "application/problem+json"
    assert "replay" in replayed.json()["detail"]


async def test_the_replay_key_expires_with_the_assertion(
    open_gateway: OpenGateway,
    central: Central,
    node_trusting: Callable[..., NodeSettings],
    redis_namespace: str,
) -> None:
    once = assertion(SHANGHAI, lifetime_s=90)
    claims = jwt.decode(once, options={"verify_signature": False})
    async with open_gateway(
        directory_url=central.url,
        redis_url=REDIS_URL,
        node=node_trusting(kafka_namespace=redis_namespace),
    ) as gateway:
        del gateway.headers["authorization"]
        taken = await gateway.get(
            f"/api/registration/v1/businesses/{SHANGHAI_USCC}",
            headers={"tongban-node-assertion": once},
        )

    client = Redis.from_url(REDIS_URL)
    try:
        expires_at = await client.expiretime(
            f"{redis_namespace}:440300:gateway:jti:310000:{claims['jti']}"
        )
    finally:
        await client.aclose()
    assert taken.status_code == 200, taken.text
    # Until exp plus the 30 s of clock skew an assertion is still accepted in.
    assert expires_at == claims["exp"] + 30


async def test_with_redis_down_node_assertions_are_refused_with_503(
    open_gateway: OpenGateway,
    central: Central,
    node_trusting: Callable[..., NodeSettings],
    dead_url: str,
) -> None:
    redis_down = "redis://" + dead_url.removeprefix("http://")
    async with open_gateway(
        directory_url=central.url,
        redis_url=redis_down,
        node=node_trusting(kafka_namespace=f"t{uuid.uuid4().hex[:12]}"),
    ) as gateway:
        from_node = await gateway.get(
            "/api/registration/v1/businesses",
            headers={"tongban-node-assertion": assertion(SHANGHAI)},
        )
        local = await gateway.get(f"/api/registration/v1/businesses/{OWN_USCC}")

    assert from_node.status_code == 503
    assert from_node.headers["content-type"] == "application/problem+json"
    assert from_node.headers["retry-after"] == "5"
    assert "replays" in from_node.json()["detail"]
    # The node's own callers are not held up: rate limits let them through without Redis.
    assert local.status_code == 200, local.text


def test_production_needs_the_anchor_file(
    ready: dict[str, StandIn], node_trusting: Callable[..., NodeSettings], tmp_path: Path
) -> None:
    node = node_trusting(environment="production")
    key_file = tmp_path / "node.pem"
    key_file.write_bytes(
        development_node_key("440300").private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings = GatewaySettings(
        node=node, directory_url="https://central.example/d.jwt", node_key_file=key_file
    )
    anchor = tmp_path / "central.json"
    anchor.write_text('{"keys": []}')

    with pytest.raises(RouteConfigError, match="DIRECTORY_ANCHOR_FILE must name"):
        create_app(settings)
    with pytest.raises(RouteConfigError, match="no P-256 key"):
        create_app(settings.model_copy(update={"directory_anchor_file": anchor}))


async def test_a_suspended_node_and_this_node_itself_are_not_routed_to(
    open_gateway: OpenGateway, central: Central, ready: dict[str, StandIn]
) -> None:
    suspended = entry("310000", ready["exchange"].url + "/node-310000", SHANGHAI)
    suspended["status"] = "suspended"
    central.document = signed_directory(
        [suspended, entry("440300", ready["exchange"].url + "/self", CENTRAL)]
    )

    async with open_gateway(directory_url=central.url) as gateway:
        to_suspended = await gateway.get("/nodes/310000/x")
        to_self = await gateway.get("/nodes/440300/x")
        from_suspended = await gateway.get(
            "/api/registration/v1/businesses",
            headers={"tongban-node-assertion": assertion(SHANGHAI)},
        )

    assert (to_suspended.status_code, to_self.status_code) == (404, 404)
    assert from_suspended.status_code == 401
