"""Client authentication by a signed JWT (``private_key_jwt``: RFC 7523 §2.2 and §3, OpenID
Connect Core §9).

The department signs a short-lived JWT with a key it registered; identity accepts it once:

* ``client_assertion_type`` is ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``;
* the header names ``alg`` ES256 or EdDSA (``none``, HS* and everything else refused before
  any key is looked at) and the ``kid`` of a key in the client's registered JWKS, whose type
  fixes the algorithm (no algorithm confusion: an EC key verifies ES256 and nothing else);
* ``iss`` = ``sub`` = the client id, of an enrolled client that is not disabled (a
  ``client_id`` form parameter, if sent, must agree);
* ``aud`` holds identity's token endpoint URL (``<issuer>/oauth/token``) or its issuer;
* ``exp`` is in the future but at most 5 minutes ahead, ``iat`` (and ``nbf`` if present) not
  in the future, each with 30 s of clock skew;
* ``jti`` has not been used by this client before: ``authenticate`` keeps used ones until they
  expire, and the table's primary key refuses a second use, also when two requests race.

The client's row may come from the token endpoint's in-process copy (``ClientDirectory``):
the jti is recorded only if the row is still the version the assertion was checked
against, so a change to the client counts from its very next request.

``authenticate`` records the jti last, after every check and the caller's own (say, of the
scope), so a refused request has not used up its assertion. Every failure is
``InvalidClient`` (401) with a description an integrator can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments import repository
from tongban_identity.departments.client_keys import ALGORITHMS, ClientKey
from tongban_identity.departments.directory import ClientDirectory, ClientEntry
from tongban_identity.departments.errors import InvalidClient, OAuthError
from tongban_kit.auth import compact

__all__ = [
    "ASSERTION_MAX_LIFETIME",
    "CLIENT_ASSERTION_TYPE",
    "CLOCK_SKEW",
    "AuthenticatedClient",
    "Presented",
    "authenticate",
    "check",
    "present",
]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_MAX_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=30)
_ACCEPTED_ALGORITHMS = frozenset(ALGORITHMS.values())
_MAX_ASSERTION_CHARS = 8192
_MAX_CLIENT_ID_CHARS = 64
_MAX_JTI_CHARS = 128
_ATTEMPTS = 3
_REQUIRED = ["iss", "sub", "aud", "exp", "iat", "jti"]


@dataclass(frozen=True)
class Presented:
    """A client assertion as presented, before anything is checked against the client."""

    jws: compact.CompactJws
    claims: dict[str, Any]  # not verified yet: they only say whose keys to check with
    algorithm: str
    kid: str
    client_id: str


@dataclass(frozen=True)
class AuthenticatedClient:
    client: ClientEntry
    jti: str
    assertion_expires_at: datetime


def present(form: Mapping[str, str]) -> Presented:
    """The form's assertion, its header and whose it claims to be (no database, no key)."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise InvalidClient(
            "authenticate with a signed JWT: client_assertion_type must be "
            f"{CLIENT_ASSERTION_TYPE} (private_key_jwt)"
        )
    assertion = form.get("client_assertion") or ""
    if not assertion:
        raise InvalidClient("the client_assertion is missing")
    if len(assertion) > _MAX_ASSERTION_CHARS:
        raise InvalidClient("the client_assertion is too long")
    try:
        jws = compact.parse(assertion)  # once: header, payload and signature
    except compact.MalformedJws:
        raise InvalidClient("the client_assertion is not a well-formed JWS") from None
    algorithm, kid = _header(jws.header)
    try:
        claims = jws.payload()
    except compact.MalformedJws:
        raise InvalidClient("the client_assertion's payload is not a JSON object") from None
    return Presented(jws, claims, algorithm, kid, _claimed_client_id(claims, form))


def check(
    presented: Presented,
    client: ClientEntry | None,
    *,
    audiences: Sequence[str],
    now: datetime,
) -> AuthenticatedClient:
    """The assertion checked against the client's row: enabled, key, signature, times, jti."""
    if client is None:
        raise InvalidClient("unknown client")
    if client.disabled_at is not None:
        raise InvalidClient("the client is disabled")
    kid, algorithm = presented.kid, presented.algorithm
    key = client.key(kid)
    if key is None:
        raise InvalidClient(f"the client has registered no key with kid {kid[:64]!r}")
    if key.algorithm != algorithm:
        raise InvalidClient(f"key {kid[:64]!r} signs with {key.algorithm}, not {algorithm}")
    if not _signature_holds(presented.jws, key):
        raise InvalidClient("the client_assertion's signature does not verify")
    claims = _checked_claims(presented.claims, presented.client_id, audiences)
    expires_at = _check_times(claims, now)
    jti = claims["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= _MAX_JTI_CHARS:
        raise InvalidClient(f"the assertion's jti must be a string of 1 to {_MAX_JTI_CHARS} chars")
    return AuthenticatedClient(client, jti, expires_at)


async def authenticate(
    session: AsyncSession,
    *,
    form: Mapping[str, str],
    audiences: Sequence[str],
    now: datetime,
    directory: ClientDirectory | None = None,
    accept: Callable[[ClientEntry], object] | None = None,
) -> tuple[AuthenticatedClient, repository.Consumed]:
    """Authenticate the client by the form's assertion and record the assertion as used.

    The client's row comes from ``directory`` (the endpoint's in-process copy; none: read
    afresh). ``accept`` runs last before the assertion is recorded and may refuse the request
    (say, for its scope): a refused request leaves its assertion unused. Recording reads the
    row's version; if the row changed since it was read, nothing is recorded and everything is
    checked again against the row as it is now. A refusal by a copy from memory is checked
    against the row as it is now too (it may have a new key or scope).
    """
    presented = present(form)
    directory = directory or ClientDirectory()
    client = directory.cached(presented.client_id)
    fresh = client is None
    if fresh:
        client = await directory.load(session, presented.client_id)
    for _ in range(_ATTEMPTS):
        try:
            authenticated = check(presented, client, audiences=audiences, now=now)
            if accept is not None:
                accept(authenticated.client)
        except OAuthError:
            if fresh:
                raise
            # Refused by the copy in memory: the row may have changed since (a new key, a
            # new scope), so the refusal stands only if the row as it is now refuses too.
            client, fresh = await directory.load(session, presented.client_id), True
            continue
        consumed = await repository.consume_assertion(
            session,
            client_id=presented.client_id,
            version=authenticated.client.version,
            jti=authenticated.jti,
            expires_at=authenticated.assertion_expires_at + CLOCK_SKEW,
            forget_before=now - CLOCK_SKEW,
        )
        if consumed.version == authenticated.client.version:
            if not consumed.recorded:
                raise InvalidClient("this client_assertion (jti) has been used already")
            return authenticated, consumed
        client, fresh = await directory.load(session, presented.client_id), True
    raise InvalidClient("the client's registration is being changed just now; retry")


def _header(header: Mapping[str, Any]) -> tuple[str, str]:
    algorithm = header.get("alg")
    if algorithm not in _ACCEPTED_ALGORITHMS:
        raise InvalidClient(
            f"the client_assertion's alg {str(algorithm)[:20]!r} is not accepted; "
            "sign with ES256 or EdDSA"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidClient("the client_assertion's header names no kid")
    return str(algorithm), kid


def _claimed_client_id(claims: Mapping[str, Any], form: Mapping[str, str]) -> str:
    """``iss`` (= ``sub``) before the signature is checked: it says whose keys to check with."""
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not issuer or issuer != subject:
        raise InvalidClient("the client_assertion's iss and sub must both be the client id")
    if len(issuer) > _MAX_CLIENT_ID_CHARS:
        raise InvalidClient("unknown client")
    if "client_id" in form and form["client_id"] != issuer:
        raise InvalidClient("client_id does not match the client_assertion's iss")
    return issuer


def _signature_holds(jws: compact.CompactJws, key: ClientKey) -> bool:
    """The signature over the assertion as sent, by the key the header's kid names (whose
    type fixes the algorithm: ``check`` refused a header naming another)."""
    if isinstance(key.key, EllipticCurvePublicKey):
        return jws.verifies_es256(key.key)
    try:
        key.key.verify(jws.signature, jws.signing_input)
    except (InvalidSignature, ValueError):
        return False
    return True


def _checked_claims(
    claims: dict[str, Any], client_id: str, audiences: Sequence[str]
) -> dict[str, Any]:
    """The signed claims: all required present, ``iss`` = ``sub`` = the client, ``aud`` ours."""
    for name in _REQUIRED:
        if claims.get(name) is None:
            raise InvalidClient(f"the client_assertion lacks the {name!r} claim")
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise InvalidClient("the client_assertion's iss and sub must both be the client id")
    aud = claims["aud"]
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in audiences for a in named):
        raise InvalidClient(
            f"the client_assertion's aud must hold the token endpoint URL {audiences[0]}"
        )
    return claims


def _instant(claims: Mapping[str, Any], name: str) -> datetime:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidClient(f"the client_assertion's {name} must be a NumericDate")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidClient(f"the client_assertion's {name} is out of range") from None


def _check_times(claims: Mapping[str, Any], now: datetime) -> datetime:
    expires_at = _instant(claims, "exp")
    if expires_at <= now - CLOCK_SKEW:
        raise InvalidClient("the client_assertion has expired")
    if expires_at > now + ASSERTION_MAX_LIFETIME + CLOCK_SKEW:
        raise InvalidClient("the client_assertion must expire within 5 minutes")
    if _instant(claims, "iat") > now + CLOCK_SKEW:
        raise InvalidClient("the client_assertion is issued in the future (iat)")
    if "nbf" in claims and _instant(claims, "nbf") > now + CLOCK_SKEW:
        raise InvalidClient("the client_assertion is not valid yet (nbf)")
    return expires_at
