"""A node's own key pair: it signs node assertions (gateway) and, at the central node, the
directory (identity). Both processes of a node read the same PEM file, so other nodes check
both with the one public key the directory publishes for the node.

Without a file, outside production, a fixed development key derived from the node code is used
(the same in every process and on every machine, so a local federation needs no key exchange);
production refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

__all__ = [
    "CENTRAL_NODE",
    "NodeKeyError",
    "development_node_key",
    "load_node_key",
    "node_identifier",
    "public_jwk",
]

#: The node that keeps the directory.
CENTRAL_NODE = "100000"
# The order of the P-256 group: a development key's scalar is reduced below it.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class NodeKeyError(ValueError):
    """The node key cannot be had; the message names the file or the rule."""


def node_identifier(code: str) -> str:
    """How assertions and the directory name a node."""
    return f"tongban:node:{code}"


def load_node_key(
    path: Path | None, *, node_code: str, production: bool, setting: str
) -> ec.EllipticCurvePrivateKey:
    """The key in ``path``, or the development key (never in production)."""
    if path is None:
        if production:
            raise NodeKeyError(f"{setting} must name this node's key in production")
        return development_node_key(node_code)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise NodeKeyError(f"{setting}={path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise NodeKeyError(f"{setting}={path}: not a P-256 EC key")
    return key


def development_node_key(node_code: str) -> ec.EllipticCurvePrivateKey:
    """The publicly known development key of ``node_code``."""
    seed = hashlib.sha256(f"tongban development node key {node_code}".encode()).digest()
    scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The public half as a JWK, its ``kid`` the RFC 7638 thumbprint."""
    public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    members = {name: public[name] for name in ("crv", "kty", "x", "y")}
    # RFC 7638: the thumbprint of the required members, sorted, no whitespace.
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    kid = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "alg": "ES256", "use": "sig"}
