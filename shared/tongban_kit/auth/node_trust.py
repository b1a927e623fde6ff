"""Trust between nodes, for services other than the gateway: the signed central directory
and RFC 7523 node assertions (data-exchange forwards national events with them).

The rules are the gateway's (``tongban_gateway.directory`` and ``.federation``): a directory is
a JWS (``typ`` ``tongban-directory+jwt``) signed by the central node's key, valid until its
``exp``; an assertion is an ES256 JWT (``typ`` ``tongban-node+jwt``) with ``iss`` = ``sub`` =
the sending node, ``aud`` the receiving node, at most 300 s of lifetime, signed by a key the
directory lists for an active node, and a ``jti`` not seen before (``tongban_kit.auth.replay``:
by every process sharing the service's Redis, or by this process without one).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tongban_kit.auth.node_keys import (
    CENTRAL_NODE,
    development_node_key,
    node_identifier,
    public_jwk,
)
from tongban_kit.auth.replay import ReplayGuard

__all__ = [
    "ASSERTION_HEADER",
    "AssertionProblem",
    "DirectoryNode",
    "DirectoryProblem",
    "NodeDirectory",
    "jwks_keys",
    "load_anchor",
    "read_directory",
    "sign_assertion",
    "sign_directory",
    "verify_assertion",
]

ASSERTION_HEADER = "tongban-node-assertion"
ASSERTION_TYPE = "tongban-node+jwt"
DIRECTORY_TYPE = "tongban-directory+jwt"
_LIFETIME_S = 60
_MAX_LIFETIME_S = 300
_LEEWAY_S = 30


class DirectoryProblem(ValueError):
    """A document that is not a directory signed by the anchor."""


class AssertionProblem(ValueError):
    """A node assertion that does not verify; the message says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class DirectoryNode:
    code: str
    gateway_url: str
    keys: dict[str, ec.EllipticCurvePublicKey]  # by kid
    status: str
    token_issuer: str = ""  # ``iss`` of the node's access tokens (visitors' tokens)


@dataclass(frozen=True, slots=True)
class NodeDirectory:
    issued_at: int
    expires_at: int
    nodes: dict[str, DirectoryNode]

    def active(self, code: str) -> DirectoryNode | None:
        entry = self.nodes.get(code)
        return entry if entry is not None and entry.status == "active" else None

    @property
    def valid(self) -> bool:
        return time.time() < self.expires_at


def jwks_keys(jwks: Any) -> dict[str, ec.EllipticCurvePublicKey]:
    """The P-256 keys of a JWKS, by ``kid``."""
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for jwk in (jwks or {}).get("keys", []):
        key = ECAlgorithm.from_jwk(jwk)
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(jwk.get("kid"), str):
            keys[jwk["kid"]] = key
    return keys


def load_anchor(
    path: Path | None, *, production: bool, setting: str
) -> dict[str, ec.EllipticCurvePublicKey]:
    """Central's node key(s), the directory's trust anchor, from the JWKS file at ``path``;
    outside production without a file, central's development key. ``ValueError`` names
    ``setting`` when the file is required, unreadable or holds no P-256 key."""
    if path is None:
        if production:
            raise ValueError(f"{setting} is required in production")
        return jwks_keys({"keys": [public_jwk(development_node_key(CENTRAL_NODE))]})
    try:
        keys = jwks_keys(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError, jwt.PyJWTError) as exc:
        raise ValueError(f"{setting}={path}: {exc}") from None
    if not keys:
        raise ValueError(f"{setting}={path}: no P-256 key")
    return keys


def sign_directory(
    key: ec.EllipticCurvePrivateKey, nodes: list[dict[str, Any]], *, valid_s: int = 600
) -> str:
    """A directory document as central publishes it (identity's is the real one; this one
    serves tests and tools)."""
    now = int(time.time())
    claims = {"iss": node_identifier(CENTRAL_NODE), "iat": now, "exp": now + valid_s}
    jwk = public_jwk(key)
    headers = {"kid": jwk["kid"], "typ": DIRECTORY_TYPE}
    return jwt.encode({**claims, "nodes": nodes}, key, algorithm="ES256", headers=headers)


def read_directory(document: str, anchor: dict[str, ec.EllipticCurvePublicKey]) -> NodeDirectory:
    """The directory in ``document`` if the anchor signed it (expired or not)."""
    try:
        header = jwt.get_unverified_header(document)
        key = anchor.get(header.get("kid", ""))
        if key is None or header.get("typ") != DIRECTORY_TYPE:
            raise DirectoryProblem("not signed by the central node's key")
        claims = jwt.decode(
            document,
            key,
            algorithms=["ES256"],
            issuer=node_identifier(CENTRAL_NODE),
            options={"verify_exp": False, "require": ["iss", "iat", "exp"]},
        )
        nodes = {
            entry["code"]: DirectoryNode(
                code=entry["code"],
                gateway_url=entry["gateway_url"].rstrip("/"),
                keys=jwks_keys(entry["jwks"]),
                status=entry["status"],
                token_issuer=str(entry.get("token_issuer", "")).rstrip("/"),
            )
            for entry in claims["nodes"]
        }
    except (jwt.PyJWTError, KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, DirectoryProblem):
            raise
        raise DirectoryProblem(f"{type(exc).__name__}: {exc}") from None
    return NodeDirectory(int(claims["iat"]), int(claims["exp"]), nodes)


def sign_assertion(
    key: ec.EllipticCurvePrivateKey,
    *,
    node_code: str,
    audience: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """A fresh assertion of node ``node_code`` for node ``audience`` (a minute of validity);
    ``extra`` claims bind it to what it is sent with (data-exchange: the event id)."""
    now = int(time.time())
    issuer = node_identifier(node_code)
    claims: dict[str, Any] = {
        **(extra or {}),
        "iss": issuer,
        "sub": issuer,
        "aud": node_identifier(audience),
        "iat": now,
        "exp": now + _LIFETIME_S,
        "jti": uuid.uuid4().hex,
    }
    headers = {"kid": public_jwk(key)["kid"], "typ": ASSERTION_TYPE}
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


async def verify_assertion(
    assertion: str, directory: NodeDirectory, *, own_code: str, replays: ReplayGuard
) -> tuple[str, dict[str, Any]]:
    """The code of the node that sent ``assertion`` and its claims; ``AssertionProblem``
    otherwise. Its ``jti`` is spent in ``replays`` until ``exp`` plus the skew allowed
    (``ReplayCheckUnavailable``, a 503, when that cannot be told)."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AssertionProblem("The node assertion is not a JWT.") from None
    issuer = unverified.get("iss")
    prefix = node_identifier("")
    if header.get("typ") != ASSERTION_TYPE or not isinstance(issuer, str):
        raise AssertionProblem("The node assertion is not a Tongban node assertion.")
    code = issuer.removeprefix(prefix)
    entry = directory.active(code) if issuer.startswith(prefix) and code != own_code else None
    if entry is None:
        raise AssertionProblem(f"{issuer} is not an active node of the directory.")
    key = entry.keys.get(str(header.get("kid")))
    if key is None:
        raise AssertionProblem(f"The node assertion is not signed by a key of node {code}.")
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=["ES256"],
            audience=node_identifier(own_code),
            issuer=issuer,
            leeway=_LEEWAY_S,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise AssertionProblem("The node assertion has expired.") from None
    except jwt.PyJWTError as exc:
        raise AssertionProblem(f"The node assertion does not verify ({exc}).") from None
    if claims["sub"] != issuer or claims["exp"] - claims["iat"] > _MAX_LIFETIME_S:
        raise AssertionProblem("The node assertion's subject or lifetime is not allowed.")
    if not await replays.first_use(f"{code}:{claims['jti']}", float(claims["exp"]) + _LEEWAY_S):
        raise AssertionProblem("The node assertion's jti was used before (a replay).")
    return code, claims
