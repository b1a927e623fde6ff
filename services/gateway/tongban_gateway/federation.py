"""Other nodes: what this gateway sends with a request it forwards under ``/nodes/<code>/``.

The caller's own token stays here (it was issued by this node for this node); the other node's
gateway gets instead a signed assertion of this node (RFC 7523 §3 shape): an ES256 JWT with
``iss`` and ``sub`` this node (``tongban:node:<code>``), ``aud`` the other node
(``tongban:node:<code>``), a minute of validity and a fresh ``jti``, in the
``Tongban-Node-Assertion`` header. The node's public key is published at
``/.well-known/tongban-node-jwks.json`` so the other node can check it (the federation issue
puts it in the central directory).

The key is a PEM file (``TONGBAN_GATEWAY_NODE_KEY_FILE``). Without one, outside production, a
fixed development key derived from the node code is used, the same in every process; in
production the gateway refuses to start with nodes configured and no key.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tongban_gateway.config import RouteConfigError
from tongban_gateway.settings import GatewaySettings
from tongban_kit.auth.node_keys import NodeKeyError, load_node_key, node_identifier, public_jwk

__all__ = ["ASSERTION_HEADER", "NodeSigner", "federation_router", "node_identifier"]

logger = logging.getLogger("tongban.gateway.federation")

ASSERTION_HEADER = "tongban-node-assertion"
ASSERTION_TYPE = "tongban-node+jwt"
_LIFETIME_S = 60


class NodeSigner:
    """Signs this node's assertions with its key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, *, node_code: str) -> None:
        self._key = key
        self.issuer = node_identifier(node_code)
        self.public_jwk = public_jwk(key)
        self.kid = self.public_jwk["kid"]

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> NodeSigner:
        """The node's key from ``node_key_file``, or the development key (never in
        production); ``RouteConfigError`` naming the setting when it cannot be had."""
        node = settings.node
        if settings.node_key_file is None and node.environment != "production":
            logger.warning("no TONGBAN_GATEWAY_NODE_KEY_FILE: the development node key is used")
        try:
            key = load_node_key(
                settings.node_key_file,
                node_code=node.node_code,
                production=node.environment == "production",
                setting="TONGBAN_GATEWAY_NODE_KEY_FILE",
            )
        except NodeKeyError as exc:
            raise RouteConfigError(f"{exc} (other nodes are configured)") from None
        return cls(key, node_code=node.node_code)

    def assertion(self, node_code: str) -> str:
        """A fresh assertion of this node for the node ``node_code``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.issuer,
            "aud": node_identifier(node_code),
            "iat": now,
            "exp": now + _LIFETIME_S,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self.kid, "typ": ASSERTION_TYPE}
        return jwt.encode(claims, self._key, algorithm="ES256", headers=headers)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}


def federation_router(signer: NodeSigner) -> APIRouter:
    """``/.well-known/tongban-node-jwks.json``: the key other nodes check assertions with."""
    router = APIRouter(tags=["federation"])

    @router.get("/.well-known/tongban-node-jwks.json")
    async def node_jwks() -> JSONResponse:
        """This node's public key for its node assertions (a JWKS). Access: public."""
        return JSONResponse(signer.jwks(), headers={"cache-control": "public, max-age=300"})

    return router
