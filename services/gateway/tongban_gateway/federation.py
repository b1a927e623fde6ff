"""Other nodes: what this gateway sends with a request it forwards under ``/nodes/<code>/``.

The caller's own token stays here (it was issued by this node for this node); the other node's
gateway gets instead a signed assertion of this node (RFC 7523 §3 shape): an ES256 JWT with
``iss`` and ``sub`` this node (``tongban:node:<code>``), ``aud`` the other node
(``tongban:node:<code>``), a minute of validity and a fresh ``jti``, in the
``Tongban-Node-Assertion`` header. The node's public key is published at
``/.well-known/tongban-node-jwks.json`` and, through ``tongban directory enrol``, in the
central directory, against which the other node checks it (``AssertionVerifier``).

The key is a PEM file (``TONGBAN_GATEWAY_NODE_KEY_FILE``, the same file as identity's
``TONGBAN_IDENTITY_NODE_KEY_FILE``). Without one, outside production, a fixed development key
derived from the node code is used (``tongban_kit.auth.node_keys``); in production the gateway
refuses to start with other nodes configured and no key.
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
from tongban_gateway.directory import Directory
from tongban_gateway.settings import GatewaySettings
from tongban_kit.auth.node_keys import NodeKeyError, load_node_key, node_identifier, public_jwk
from tongban_kit.auth.replay import ReplayGuard
from tongban_kit.errors import TongbanError

__all__ = [
    "ASSERTION_HEADER",
    "AssertionRefused",
    "AssertionVerifier",
    "NodeSigner",
    "federation_router",
    "node_identifier",
]

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


class AssertionRefused(TongbanError):
    """A node assertion that does not verify (401)."""

    status, title, type_slug = 401, "Unauthorized", "node-assertion-refused"


# Longest lifetime (exp - iat) accepted, and clock skew allowed between nodes.
_MAX_LIFETIME_S = 300
_LEEWAY_S = 30


class AssertionVerifier:
    """Checks the node assertion another node's gateway sent, against the directory.

    Accepted: an ES256 JWT with ``typ`` ``tongban-node+jwt``, ``iss`` = ``sub`` = an active
    node of the directory (``tongban:node:<code>``), signed by one of that node's keys listed
    there, ``aud`` this node, ``exp`` in the future and at most 300 s after ``iat``, and a
    ``jti`` not seen before (``replays``: every gateway process sharing Redis, or this one
    alone without it; remembered until ``exp`` plus the skew allowed). Anything else is a 401
    problem; no valid directory copy, or a replay check that cannot be made, is a 503.
    """

    def __init__(self, directory: Directory, *, node_code: str, replays: ReplayGuard) -> None:
        self.directory = directory
        self.audience = node_identifier(node_code)
        self.replays = replays

    async def verify(self, assertion: str) -> str:
        """The code of the node that sent ``assertion``."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AssertionRefused("The node assertion is not a JWT.") from None
        issuer = unverified.get("iss")
        prefix = node_identifier("")
        if header.get("typ") != ASSERTION_TYPE or not isinstance(issuer, str):
            raise AssertionRefused("The node assertion is not a Tongban node assertion.")
        code = issuer.removeprefix(prefix)
        entry = self.directory.node(code) if issuer.startswith(prefix) else None
        if entry is None:
            raise AssertionRefused(f"{issuer} is not an active node of the directory.")
        key = entry.keys.get(str(header.get("kid")))
        if key is None:
            raise AssertionRefused(f"The node assertion is not signed by a key of node {code}.")
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["ES256"],
                audience=self.audience,
                issuer=issuer,
                leeway=_LEEWAY_S,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise AssertionRefused("The node assertion has expired.") from None
        except jwt.PyJWTError as exc:
            raise AssertionRefused(f"The node assertion does not verify ({exc}).") from None
        if claims["sub"] != issuer or claims["exp"] - claims["iat"] > _MAX_LIFETIME_S:
            raise AssertionRefused("The node assertion's subject or lifetime is not allowed.")
        if not await self.replays.first_use(f"{code}:{claims['jti']}", claims["exp"] + _LEEWAY_S):
            raise AssertionRefused("The node assertion's jti was used before (a replay).")
        return code
