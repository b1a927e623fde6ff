"""Token checks at the edge: a protected route needs a valid access token before it is forwarded.

The check is the kit's ``verify_access_token`` against identity's keys (``JwksCache``: by key id,
refreshed in the background, refetched on an unknown key id). A forged, expired or ``alg: none``
token is a 401 with ``WWW-Authenticate``; keys that cannot be fetched are a 503, never a 401.
Services verify the token again on their own: the edge check keeps junk off them, it does not
replace theirs.

A token that verified is remembered (bounded, until its ``exp``, and only while its signing key
is still published), so a client's next requests cost a dictionary lookup, not an ECDSA check.

Visitors' tokens (issued by another node, ``tongban_kit.auth.visitors``) are accepted with the
kit's ``TrustedIssuers`` the base app builds from ``TONGBAN_DIRECTORY_URL``, as every service
of the node does: same setting, same code, same answer. They are checked every time, never
remembered, so a node suspended in the directory is refused from the next refresh on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from tongban_kit.auth import AccessClaims, InvalidToken, JwksCache, verify_access_token
from tongban_kit.auth.visitors import TrustedIssuers

__all__ = ["EdgeAuth", "client_key"]

_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class _Verified:
    claims: AccessClaims
    kid: str
    expires: float


class EdgeAuth:
    """Verify bearer tokens for the gateway with the app's ``JwksCache``."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        visitors: TrustedIssuers | None = None,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.visitors = visitors
        self._verified: dict[str, _Verified] = {}

    async def claims(self, authorization: str | None) -> AccessClaims:
        """The claims of the ``Authorization: Bearer`` token; ``InvalidToken`` (401) or
        ``ServiceUnavailable`` (503) otherwise."""
        if not authorization:
            raise InvalidToken("this request needs a bearer access token", missing=True)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("the Authorization header is not a bearer token")
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known.expires and known.kid in self.jwks.key_ids:
                return known.claims
            del self._verified[token]
        claims = await verify_access_token(
            token,
            jwks=self.jwks,
            issuer=self.issuer,
            audience=self.audience,
            visitors=self.visitors,
        )
        if claims.iss == self.issuer:
            self._remember(token, claims)
        return claims

    def _remember(self, token: str, claims: AccessClaims) -> None:
        if len(self._verified) >= _CACHE_SIZE:
            now = time.time()
            self._verified = {t: v for t, v in self._verified.items() if v.expires > now}
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
        kid = jwt.get_unverified_header(token)["kid"]
        self._verified[token] = _Verified(claims, kid, claims.exp.timestamp())


def client_key(claims: AccessClaims) -> str:
    """Whose bucket a request draws on: the department or the token's subject."""
    if claims.principal == "department" and claims.department:
        return f"department:{claims.department}"
    return f"sub:{claims.sub}"
