"""Verify an access token locally against the issuer's published keys."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tongban_kit.auth import compact
from tongban_kit.auth.challenges import InvalidToken
from tongban_kit.auth.claims import AccessClaims
from tongban_kit.auth.jwks import JwksCache, UnknownKeyId

if TYPE_CHECKING:
    from tongban_kit.auth.visitors import TrustedIssuers

__all__ = ["ACCESS_TOKEN_ALGORITHM", "ACCESS_TOKEN_TYPE", "verify_access_token"]

ACCESS_TOKEN_ALGORITHM = "ES256"  # noqa: S105 -- an algorithm name, not a secret
#: RFC 9068 §2.1. Identity signs other things with the same keys (documents, ID tokens);
#: the type keeps any of those from passing as an access token.
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 -- a media type, not a secret
_ACCEPTED_TYPES = {ACCESS_TOKEN_TYPE, "application/" + ACCESS_TOKEN_TYPE}
_MAX_TOKEN_CHARS = 8192
_REQUIRED = ["iss", "sub", "aud", "exp", "iat", "jti"]


async def verify_access_token(
    token: str,
    *,
    jwks: JwksCache,
    issuer: str,
    audience: str,
    leeway_s: float = 30.0,
    visitors: TrustedIssuers | None = None,
) -> AccessClaims:
    """The claims of ``token`` if it is a valid ES256 access token from ``issuer`` for ``audience``.

    Refused with ``InvalidToken`` (a ``tongban_kit.errors.Unauthorized``, 401) naming the
    reason: malformed, an algorithm other than ES256 (``none`` and HS256 included), a ``typ``
    other than ``at+jwt``, no or an unknown ``kid`` (after one rate-limited refetch of the
    key set), a signature that does not verify, expired or not yet valid (``leeway_s`` of
    clock skew allowed), another issuer or audience, or a required claim missing or invalid.
    Raises ``ServiceUnavailable`` (503) when the keys cannot be fetched at all.

    The token is parsed once (``tongban_kit.auth.compact``): header, then the signature over
    the bytes as sent, then the payload; not ``jwt.decode``, which repeats the parsing.
    """
    if len(token) > _MAX_TOKEN_CHARS:
        raise InvalidToken("the token is too long")
    try:
        jws = compact.parse(token)  # the header only is read before the key is known
    except compact.MalformedJws:
        raise InvalidToken("the token is not a well-formed JWS") from None
    header = jws.header
    algorithm = header.get("alg")
    if algorithm != ACCESS_TOKEN_ALGORITHM:
        raise InvalidToken(
            f"the token's algorithm {str(algorithm)[:20]!r} is not accepted; ES256 only"
        )
    if str(header.get("typ", "")).lower() not in _ACCEPTED_TYPES:
        raise InvalidToken("the token is not an access token (typ must be at+jwt)")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 128:
        raise InvalidToken("the token names no key id (kid)")
    home: str | None = None
    audiences: tuple[str, ...] = (audience,)
    if visitors is not None:
        claimed = _claimed_issuer(jws)
        if claimed != issuer:
            home, jwks = await visitors.home_of(claimed)
            issuer = str(claimed)
            audiences = (audience, visitors.home_audience(home))
    try:
        key = await jwks.get_key(kid)
    except UnknownKeyId:
        raise InvalidToken("the token is signed with a key the issuer does not publish") from None
    if not jws.verifies_es256(key):
        raise InvalidToken("the token's signature does not verify")
    try:
        payload = jws.payload()
    except compact.MalformedJws:
        raise InvalidToken("the token is malformed") from None
    _check_registered_claims(payload, issuer=issuer, audiences=audiences, leeway_s=leeway_s)
    try:
        claims = AccessClaims.model_validate(payload)
    except ValidationError as exc:
        raise InvalidToken(_claims_problem(exc)) from None
    if visitors is not None and home is not None:
        return visitors.admit(claims, home)
    return claims


def _claimed_issuer(jws: compact.CompactJws) -> object:
    """The ``iss`` a token claims, read before its signature is checked: only to pick the keys
    to check it with (the claims are used only once the signature holds)."""
    try:
        return jws.payload().get("iss")
    except compact.MalformedJws:
        raise InvalidToken("the token is malformed") from None


def _check_registered_claims(
    payload: dict[str, Any], *, issuer: str, audiences: tuple[str, ...], leeway_s: float
) -> None:
    """RFC 7519 §4.1 as ``jwt.decode`` checks them: present, times, issuer, audience."""
    for claim in _REQUIRED:
        if payload.get(claim) is None:
            raise InvalidToken(f"the token lacks the {claim!r} claim")
    now = time.time()
    if _instant(payload, "exp") <= now - leeway_s:
        raise InvalidToken("the token has expired")
    if "nbf" in payload and _instant(payload, "nbf") > now + leeway_s:
        raise InvalidToken("the token is not valid yet")
    if _instant(payload, "iat") > now + leeway_s:
        raise InvalidToken("the token is not valid yet (iat)")
    if payload["iss"] != issuer:
        raise InvalidToken("the token comes from another issuer")
    named = payload["aud"]
    if isinstance(named, str):
        named = [named]
    if not isinstance(named, list) or not all(isinstance(a, str) for a in named):
        raise InvalidToken("the token's 'aud' claim is invalid")
    if not any(audience in named for audience in audiences):
        raise InvalidToken("the token is not meant for this service (aud)")


def _instant(payload: dict[str, Any], claim: str) -> float:
    value = payload[claim]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"the token's {claim!r} claim is invalid")
    return float(value)


def _claims_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    claim = str(error["loc"][0]) if error.get("loc") else "?"
    if error.get("type") == "missing":
        return f"the token lacks the {claim!r} claim"
    return f"the token's {claim!r} claim is invalid"
