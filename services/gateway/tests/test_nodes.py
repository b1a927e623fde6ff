"""Other nodes: /nodes/<code>/… forwarded to that node's gateway with this node's signed
assertion instead of the caller's token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tongban_gateway.config import RouteConfigError
from tongban_gateway.main import create_app
from tongban_gateway.settings import GatewaySettings
from tongban_kit.settings import NodeSettings

if TYPE_CHECKING:
    from conftest import OpenGateway, StandIn


def with_node(tmp_path: Path, stand_ins: dict[str, StandIn]) -> Path:
    """The built-in services plus node 110000, whose "gateway" is the exchange stand-in."""
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""
upstreams:
  - name: identity
  - name: registration
  - name: exchange
nodes:
  - code: "110000"
    url: {stand_ins["exchange"].url}/node-110000
"""
    )
    return path


async def test_a_request_reaches_the_other_node_with_this_nodes_assertion(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    async with open_gateway(routes_file=with_node(tmp_path, ready)) as gateway:
        response = await gateway.get("/nodes/110000/api/registration/v1/businesses/X?a=1")
        published = (await gateway.get("/.well-known/tongban-node-jwks.json")).json()

    seen = response.json()
    assert response.status_code == 200
    assert (seen["path"], seen["query"]) == ("/node-110000/api/registration/v1/businesses/X", "a=1")
    assert "authorization" not in seen["headers"]  # the caller's token stays on this node
    assertion = seen["headers"]["tongban-node-assertion"]
    header = jwt.get_unverified_header(assertion)
    (key,) = [k for k in published["keys"] if k["kid"] == header["kid"]]
    claims = jwt.decode(
        assertion,
        ECAlgorithm.from_jwk(key),  # type: ignore[arg-type]
        algorithms=["ES256"],
        audience="tongban:node:110000",
        issuer="tongban:node:440300",
    )
    assert claims["sub"] == "tongban:node:440300"
    assert claims["exp"] - claims["iat"] <= 60
    assert header["typ"] == "tongban-node+jwt"


async def test_each_assertion_is_fresh(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    async with open_gateway(routes_file=with_node(tmp_path, ready)) as gateway:
        first = (await gateway.get("/nodes/110000/a")).json()["headers"]
        second = (await gateway.get("/nodes/110000/b")).json()["headers"]

    jtis = {
        jwt.decode(h["tongban-node-assertion"], options={"verify_signature": False})["jti"]
        for h in (first, second)
    }
    assert len(jtis) == 2


async def test_other_nodes_need_a_token_and_a_known_code(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    async with open_gateway(routes_file=with_node(tmp_path, ready)) as gateway:
        unknown = await gateway.get("/nodes/999999/x")
        del gateway.headers["authorization"]
        anonymous = await gateway.get("/nodes/110000/x")

    assert unknown.status_code == 404
    assert anonymous.status_code == 401


async def test_the_node_key_comes_from_its_file(
    open_gateway: OpenGateway, ready: dict[str, StandIn], tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "node.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    async with open_gateway(
        routes_file=with_node(tmp_path, ready), node_key_file=key_file
    ) as gateway:
        seen = (await gateway.get("/nodes/110000/x")).json()["headers"]

    claims = jwt.decode(
        seen["tongban-node-assertion"],
        key.public_key(),
        algorithms=["ES256"],
        audience="tongban:node:110000",
    )
    assert claims["iss"] == "tongban:node:440300"


def test_production_refuses_the_development_key(
    ready: dict[str, StandIn], tmp_path: Path, node_trusting: Callable[..., NodeSettings]
) -> None:
    settings = GatewaySettings(
        routes_file=with_node(tmp_path, ready), node=node_trusting(environment="production")
    )

    with pytest.raises(RouteConfigError, match="TONGBAN_GATEWAY_NODE_KEY_FILE"):
        create_app(settings)


def test_a_bad_key_file_is_refused(ready: dict[str, StandIn], tmp_path: Path) -> None:
    bad = tmp_path / "node.pem"
    bad.write_text("not a key")

    with pytest.raises(RouteConfigError, match="NODE_KEY_FILE"):
        create_app(GatewaySettings(routes_file=with_node(tmp_path, ready), node_key_file=bad))
