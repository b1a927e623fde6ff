"""Service accounts: a service calling another service as an OAuth client of identity.

A service that needs another's protected endpoint (registration asking identity to sign an
e-licence, data-exchange asking for a pairwise pseudonym) holds an EC P-256 key of its own.
Identity knows the public half as an enrolled client (``tongban node up`` enrols each service
that names ``client_scopes`` in its spec); the service gets access tokens with the
client-credentials grant, authenticated by a ``private_key_jwt`` assertion (RFC 7523), and
keeps each one until shortly before it expires. No shared secret exists anywhere.

``ServiceTokens`` does the getting and caching; ``service_key_jwks`` and ``generate_service_key``
are what the launcher uses to make and enrol the key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tongban_kit.errors import ServiceUnavailable

__all__ = [
    "ServiceTokens",
    "generate_service_key",
    "load_service_key",
    "service_key_jwks",
]

_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: A cached token is renewed this long before it expires, so no call carries a dying one.
_RENEW_BEFORE_S = 30.0


def generate_service_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A new P-256 key written to ``path`` as PEM, readable by its owner only."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(pem)
    return key


def load_service_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key in the PEM file ``path``."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path} does not hold an EC P-256 private key")
    return key


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    public: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    members = {name: public[name] for name in ("crv", "kty", "x", "y")}
    # RFC 7638 thumbprint as the kid: the same key always gets the same id.
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "alg": "ES256", "use": "sig"}


def service_key_jwks(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The public JWKS identity enrols for this key."""
    return {"keys": [_public_jwk(key)]}


class ServiceTokens:
    """Access tokens for one service account, fetched on demand and cached until near expiry.

    ``token_url`` is where the request goes (identity's internal address); ``audience`` is the
    token endpoint as identity names it publicly (``<issuer>/oauth/token``), which the
    assertion must carry. Concurrent callers share one fetch.
    """

    def __init__(
        self,
        *,
        token_url: str,
        audience: str,
        client_id: str,
        key: ec.EllipticCurvePrivateKey,
        http_client: httpx.AsyncClient,
        scope: str | None = None,
    ) -> None:
        self.token_url, self.audience, self.client_id = token_url, audience, client_id
        self.scope = scope
        self._key = key
        self._kid = _public_jwk(key)["kid"]
        self._client = http_client
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A valid access token for this service."""
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._token, lifetime = await self._fetch()
                self._renew_at = time.monotonic() + max(lifetime - _RENEW_BEFORE_S, 1.0)
            return self._token

    async def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for an outgoing request."""
        return {"Authorization": f"Bearer {await self.token()}"}

    def forget(self) -> None:
        """Drop the cached token (the callee refused it: a key rotation or a revocation)."""
        self._token = None

    def _assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._kid})

    async def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": _ASSERTION_TYPE,
            "client_assertion": self._assertion(),
        }
        if self.scope:
            form["scope"] = self.scope
        try:
            response = await self._client.post(self.token_url, data=form, timeout=5.0)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"identity cannot be reached for a service token ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            # The body is an OAuth error, never a secret; its code tells the operator why.
            error = _oauth_error(response)
            raise ServiceUnavailable(
                f"identity refused this service's token request ({response.status_code} {error})"
            )
        body = response.json()
        return str(body["access_token"]), float(body.get("expires_in", 60))


def _oauth_error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:64]
    except ValueError:
        return ""
