"""The directory's rules: one-time enrolment tokens, enrolment, and the signed document.

The document is a compact JWS (ES256, ``typ: tongban-directory+jwt``) signed with the central
node's key: ``iss`` the central node, ``iat``, ``exp`` (``iat`` + the validity, 600 s by
default as in X-Road's global configuration) and ``nodes``, every node with its code, name,
gateway URL, token issuer, node keys (JWKS) and status; the central node lists itself first.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.nodes import repository
from tongban_identity.nodes.models import Node, NodeEnrolmentToken
from tongban_identity.nodes.schemas import NodeEnrolment, NodeOut
from tongban_identity.settings import IdentitySettings, public_gateway_url
from tongban_kit.auth.node_keys import CENTRAL_NODE, load_node_key, node_identifier, public_jwk
from tongban_kit.errors import BadRequest, NotFound, Unauthorized

__all__ = ["DIRECTORY_TYPE", "directory_document", "enrol", "issue_token"]

DIRECTORY_TYPE = "tongban-directory+jwt"
_TOKEN_PREFIX = "tbe_"  # noqa: S105 - a prefix, not a secret


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keeps_directory(node_code: str) -> bool:
    return node_code == CENTRAL_NODE


async def issue_token(session: AsyncSession, *, code: str, ttl: timedelta, now: datetime) -> str:
    """A fresh one-time token for node ``code`` to enrol with; only its hash is stored."""
    if not code.isdigit() or len(code) != 6 or code == CENTRAL_NODE:
        raise BadRequest(f"{code!r} is not a regional node's six-digit division code")
    token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    await repository.add_token(
        session,
        NodeEnrolmentToken(
            token_sha256=_digest(token), code=code, issued_at=now, expires_at=now + ttl
        ),
    )
    return token


async def enrol(session: AsyncSession, *, enrolment: NodeEnrolment, now: datetime) -> Node:
    """Spend the token and list (or re-list, with new keys or URL) the node."""
    spent = await repository.spend_token(
        session, token_sha256=_digest(enrolment.token), code=enrolment.code, now=now
    )
    if not spent:
        # One answer for unknown, used, expired and issued-for-another-node: no oracle.
        raise Unauthorized("The enrolment token is not valid for this node code.")
    values = enrolment.model_dump(exclude={"token"})
    return await repository.upsert_node(session, values, now)


async def suspend(session: AsyncSession, *, code: str, now: datetime) -> None:
    if not await repository.set_status(session, code, "suspended", now):
        raise NotFound(f"No node {code} is in the directory.")


async def directory_document(
    session: AsyncSession,
    *,
    key: ec.EllipticCurvePrivateKey,
    own: dict[str, Any],
    valid_s: int,
) -> str:
    """The signed directory: ``own`` (this, the central node) first, then every enrolled node."""
    nodes = [own] + [
        NodeOut.model_validate(node).model_dump()
        for node in await repository.list_nodes(session)
        if node.code != own["code"]
    ]
    now = int(time.time())
    claims = {
        "iss": node_identifier(own["code"]),
        "iat": now,
        "exp": now + valid_s,
        "nodes": nodes,
    }
    jwk = public_jwk(key)
    return jwt.encode(
        claims, key, algorithm="ES256", headers={"kid": jwk["kid"], "typ": DIRECTORY_TYPE}
    )


def own_key(settings: IdentitySettings) -> ec.EllipticCurvePrivateKey:
    """This node's key (``node_key_file`` or the development key); ``NodeKeyError``."""
    return load_node_key(
        settings.node_key_file,
        node_code=settings.node.node_code,
        production=settings.node.environment == "production",
        setting="TONGBAN_IDENTITY_NODE_KEY_FILE",
    )


def own_entry(settings: IdentitySettings, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """This node as the directory lists it (and as it enrols)."""
    code = settings.node.node_code
    return {
        "code": code,
        "name": settings.node_name or code,
        "gateway_url": public_gateway_url(settings),
        "token_issuer": settings.node.token_issuer,
        "jwks": {"keys": [public_jwk(key)]},
        "status": "active",
    }
