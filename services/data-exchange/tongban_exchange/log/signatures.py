"""Checking a checkpoint's detached JWS (RFC 7797, ``"b64": false``) against the node's
document keys (identity's ``/.well-known/document-jwks.json``), offline."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def keys_from_jwks(jwks: dict[str, Any]) -> dict[str, PublicKey]:
    """Public keys by ``kid`` from a JWK set (P-256 and Ed25519)."""
    keys: dict[str, PublicKey] = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(_b64(jwk["x"]), "big"),
                int.from_bytes(_b64(jwk["y"]), "big"),
                ec.SECP256R1(),
            )
            keys[jwk["kid"]] = numbers.public_key()
        elif jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(_b64(jwk["x"]))
    return keys


def check(jws: str, document_sha256: str, keys: dict[str, PublicKey]) -> str | None:
    """None if ``jws`` is a valid signature of the digest by one of ``keys``; else why not."""
    try:
        header_b64, payload, signature_b64 = jws.split(".")
        header = json.loads(_b64(header_b64))
        signature = _b64(signature_b64)
    except ValueError:
        return "not a compact detached JWS"
    if payload or header.get("b64") is not False:
        return "not a detached, unencoded-payload JWS"
    key = keys.get(header.get("kid", ""))
    if key is None:
        return f"unknown key {header.get('kid')!r}"
    signing_input = f"{header_b64}.{document_sha256}".encode()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and header.get("alg") == "ES256":
            if len(signature) != 64:
                return "malformed ES256 signature"
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, Ed25519PublicKey) and header.get("alg") == "EdDSA":
            key.verify(signature, signing_input)
        else:
            return f"algorithm {header.get('alg')!r} does not match the key"
    except InvalidSignature:
        return "the signature does not verify"
    return None


DOCUMENT_JWKS_PATH = "/.well-known/document-jwks.json"


async def fetch_keys(http: httpx.AsyncClient, identity_url: str) -> dict[str, PublicKey] | None:
    """The node's document keys from identity, or None if identity cannot be reached."""
    try:
        response = await http.get(identity_url.rstrip("/") + DOCUMENT_JWKS_PATH)
        response.raise_for_status()
        return keys_from_jwks(response.json())
    except (httpx.HTTPError, ValueError):
        return None
