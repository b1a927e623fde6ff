"""Test drivers for signatures: a person's key material and detached JWS made the way the
portal guide shows (``cryptography`` only), and access tokens minted by the identity app
itself. Shipped with the package, like the kit's ``testing`` modules, so tests share one copy.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI

from tongban_identity.tokens.service import issue_access_token
from tongban_kit.auth import AssuranceLevel

__all__ = ["PrivateKey", "b64url", "mint_token", "public_jwk", "sign_detached"]

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: PrivateKey) -> dict[str, str]:
    """The public JWK of a P-256 or Ed25519 private key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def sign_detached(
    key: PrivateKey,
    payload: str,
    *,
    kid: str,
    typ: str = "tongban-document+jws",
    alg: str | None = None,
) -> str:
    """A detached JWS with an unencoded payload (RFC 7797): ``payload`` itself is signed."""
    ec_key = isinstance(key, ec.EllipticCurvePrivateKey)
    header: dict[str, Any] = {"alg": alg or ("ES256" if ec_key else "EdDSA"), "kid": kid}
    header |= {"typ": typ, "b64": False, "crit": ["b64"]}
    header_b64 = b64url(json.dumps(header).encode())
    signing_input = f"{header_b64}.{payload}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input)
    return f"{header_b64}..{b64url(signature)}"


async def mint_token(
    app: FastAPI, *scopes: str, subject: str, acr: AssuranceLevel | None = None
) -> str:
    """An access token from the running identity app's own active key."""
    settings = app.state.settings
    async with app.state.sessionmaker() as session, session.begin():
        return await issue_access_token(
            session,
            vault=app.state.key_vault,
            issuer=settings.issuer,
            subject=subject,
            audience=app.state.token_audience,
            scope=scopes,
            acr=acr,
            amr=["pwd"] if acr else [],
            auth_time=datetime.now(UTC) if acr else None,
            node=settings.node.node_code,
        )
