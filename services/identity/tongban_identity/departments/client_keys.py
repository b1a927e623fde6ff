"""A department's public keys: the JWKS it registers, and the key that checks its assertion.

Accepted: P-256 keys for ES256 and Ed25519 keys for EdDSA, for signing only. A key set holding
a private member (``d`` …) is refused outright, so a private key pasted by mistake is never
stored. What is stored is the normalised public form: ``kty crv x [y] kid alg use``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm
from jwt.exceptions import InvalidKeyError

__all__ = ["ALGORITHMS", "MAX_KEYS", "ClientKey", "find_key", "normalise_jwks"]

#: (kty, crv) → the one algorithm such a key may sign with.
ALGORITHMS: dict[tuple[str, str], str] = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA"}
MAX_KEYS = 5
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_COORDINATES = {"EC": ("x", "y"), "OKP": ("x",)}

PublicKey = EllipticCurvePublicKey | Ed25519PublicKey


@dataclass(frozen=True)
class ClientKey:
    kid: str
    algorithm: str
    key: PublicKey


def normalise_jwks(document: Any) -> dict[str, Any]:
    """The public key set to store, or ``ValueError`` naming what is wrong (never key material)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS is an object with a "keys" list (RFC 7517 §5)')
    entries = document["keys"]
    if not 1 <= len(entries) <= MAX_KEYS:
        raise ValueError(f"a department registers 1 to {MAX_KEYS} keys")
    keys: list[dict[str, Any]] = []
    for position, entry in enumerate(entries):
        key = _normalise_key(entry, position)
        if any(seen["kid"] == key["kid"] for seen in keys):
            raise ValueError(f"key {position}: kid {key['kid']!r} appears twice")
        keys.append(key)
    return {"keys": keys}


def _normalise_key(entry: Any, position: int) -> dict[str, Any]:
    where = f"key {position}"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: not a JSON object")
    if _PRIVATE_MEMBERS & set(entry):
        raise ValueError(f"{where}: holds private key material; register the public key only")
    kid = entry.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 128 or not kid.isprintable():
        raise ValueError(f"{where}: needs a kid of 1 to 128 printable characters")
    kty, crv = entry.get("kty"), entry.get("crv")
    algorithm = ALGORITHMS.get((str(kty), str(crv)))
    if algorithm is None:
        raise ValueError(f"{where}: only EC P-256 (ES256) and OKP Ed25519 (EdDSA) keys serve")
    if entry.get("alg", algorithm) != algorithm:
        raise ValueError(f"{where}: a {kty} {crv} key signs with {algorithm} only")
    if entry.get("use", "sig") != "sig":
        raise ValueError(f'{where}: use must be "sig"')
    public = {"kty": kty, "crv": crv} | {name: entry.get(name) for name in _COORDINATES[str(kty)]}
    if not all(isinstance(public[name], str) for name in _COORDINATES[str(kty)]):
        raise ValueError(f"{where}: missing public key coordinates")
    try:
        _load(public)
    except (InvalidKeyError, ValueError, TypeError):
        raise ValueError(f"{where}: not a valid {crv} public key") from None
    return {**public, "kid": kid, "alg": algorithm, "use": "sig"}


def _load(public: Mapping[str, Any]) -> PublicKey:
    loaded = (ECAlgorithm if public["kty"] == "EC" else OKPAlgorithm).from_jwk(dict(public))
    if not isinstance(loaded, EllipticCurvePublicKey | Ed25519PublicKey):
        raise ValueError("not a public key")
    return loaded


def find_key(jwks: Mapping[str, Any], kid: str) -> ClientKey | None:
    """The registered key named ``kid``, loaded, or None."""
    for entry in jwks.get("keys", ()):
        if entry.get("kid") == kid:
            return ClientKey(kid, entry["alg"], _load(entry))
    return None
