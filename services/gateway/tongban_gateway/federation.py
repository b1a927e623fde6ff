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

import base64
import hashlib
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from jwt.algorithms import ECAlgorithm

from tongban_gateway.config import RouteConfigError
from tongban_gateway.settings import GatewaySettings

__all__ = ["ASSERTION_HEADER", "NodeSigner", "federation_router", "node_identifier"]

logger = logging.getLogger("tongban.gateway.federation")

ASSERTION_HEADER = "tongban-node-assertion"
ASSERTION_TYPE = "tongban-node+jwt"
_LIFETIME_S = 60
# The order of the P-256 group: a development key's scalar is reduced below it.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def node_identifier(code: str) -> str:
    """How assertions name a node."""
    return f"tongban:node:{code}"


class NodeSigner:
    """Signs this node's assertions with its key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, *, node_code: str) -> None:
        self._key = key
        self.issuer = node_identifier(node_code)
        self.public_jwk = _public_jwk(key)
        self.kid = self.public_jwk["kid"]

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> NodeSigner:
        """The node's key from ``node_key_file``, or the development key (never in
        production); ``RouteConfigError`` naming the setting when it cannot be had."""
        node = settings.node
        path = settings.node_key_file
        if path is not None:
            return cls(_read_key(path), node_code=node.node_code)
        if node.environment == "production":
            raise RouteConfigError(
                "TONGBAN_GATEWAY_NODE_KEY_FILE must name this node's key in production "
                "(other nodes are configured); the development key is refused"
            )
        logger.warning("no TONGBAN_GATEWAY_NODE_KEY_FILE: the fixed development node key is used")
        return cls(_development_key(node.node_code), node_code=node.node_code)

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


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise RouteConfigError(f"TONGBAN_GATEWAY_NODE_KEY_FILE={path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise RouteConfigError(f"TONGBAN_GATEWAY_NODE_KEY_FILE={path}: not a P-256 EC key")
    return key


def _development_key(node_code: str) -> ec.EllipticCurvePrivateKey:
    seed = hashlib.sha256(f"tongban development node key {node_code}".encode()).digest()
    scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    members = {name: public[name] for name in ("crv", "kty", "x", "y")}
    # RFC 7638: the thumbprint of the required members, sorted, no whitespace.
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    kid = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "alg": "ES256", "use": "sig"}


def federation_router(signer: NodeSigner) -> APIRouter:
    """``/.well-known/tongban-node-jwks.json``: the key other nodes check assertions with."""
    router = APIRouter(tags=["federation"])

    @router.get("/.well-known/tongban-node-jwks.json")
    async def node_jwks() -> JSONResponse:
        """This node's public key for its node assertions (a JWKS). Access: public."""
        return JSONResponse(signer.jwks(), headers={"cache-control": "public, max-age=300"})

    return router
