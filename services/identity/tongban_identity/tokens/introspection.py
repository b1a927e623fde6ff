"""Token introspection (RFC 7662): is this access token active, and what does it say?

Services verify tokens themselves from the JWKS; introspection is for the one thing a
signature cannot tell: whether the sign-in the token came from has ended since. A person's
access token carries ``sid``, the id of its sign-in (refresh-token family); once that sign-in
is revoked (logout, RFC 7009 revocation, refresh-token reuse) its access tokens introspect as
inactive, although they still verify offline until they expire (minutes).

Only access tokens are introspected. Refresh tokens are opaque and for their holder alone:
they, like anything else that is not a valid access token of this issuer (expired, not yet
valid, signed by an unpublished key, another issuer or audience, malformed), answer
``{"active": false}`` and nothing more (RFC 7662 §2.2).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments import assertions
from tongban_identity.departments.errors import InvalidClient
from tongban_identity.departments.own_tokens import token_endpoint
from tongban_identity.sessions import repository
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth import InsufficientScope, InvalidToken, JwksCache, verify_access_token

#: Services (service accounts) call introspection with a bearer token holding this scope.
INTROSPECT_SCOPE = "identity:introspect"
INACTIVE: dict[str, Any] = {"active": False}
MAX_TOKEN_CHARS = 8192


def introspection_endpoint(settings: IdentitySettings) -> str:
    return f"{settings.issuer}/oauth/introspect"


async def authenticate_caller(
    session: AsyncSession,
    *,
    authorization: str | None,
    form: Mapping[str, str],
    jwks: JwksCache,
    settings: IdentitySettings,
    now: datetime,
) -> str:
    """Who asks (a client id or a token's ``sub``), as RFC 7662 §2.1 requires.

    Either a bearer access token with ``identity:introspect`` in the ``Authorization`` header,
    or a client assertion (``private_key_jwt``) in the form, exactly as at the token endpoint
    (its ``aud`` may name the token endpoint, this endpoint or the issuer; it is used up).
    """
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise InvalidToken("use Authorization: Bearer <access token>")
        claims = await verify_access_token(
            credentials.strip(),
            jwks=jwks,
            issuer=settings.issuer,
            audience=settings.token_audience,
        )
        if INTROSPECT_SCOPE not in claims.scopes:
            raise InsufficientScope(
                f"the token lacks the scope {INTROSPECT_SCOPE}", required_scopes=(INTROSPECT_SCOPE,)
            )
        return claims.sub
    if "client_assertion" not in form and "client_assertion_type" not in form:
        raise InvalidClient(
            "authenticate with a client assertion (private_key_jwt) or a bearer access token "
            f"with the scope {INTROSPECT_SCOPE}"
        )
    authenticated, _ = await assertions.authenticate(
        session,
        form=form,
        audiences=[token_endpoint(settings), introspection_endpoint(settings), settings.issuer],
        now=now,
    )
    return authenticated.client.client_id


async def introspect(
    session: AsyncSession, token: str, *, jwks: JwksCache, settings: IdentitySettings
) -> dict[str, Any]:
    """RFC 7662 §2.2: ``{"active": true, "token_type": "Bearer", <the token's claims>}`` or
    ``{"active": false}``. No clock leeway: a token past ``exp`` is inactive."""
    if len(token) > MAX_TOKEN_CHARS:
        return INACTIVE
    try:
        await verify_access_token(
            token, jwks=jwks, issuer=settings.issuer, audience=settings.token_audience, leeway_s=0
        )
    except InvalidToken:
        return INACTIVE
    # Verified just now: these are the signed claims, including any the kit does not model.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    sid = claims.get("sid")
    if sid is not None and not await _sign_in_alive(session, sid):
        return INACTIVE
    return {"active": True, "token_type": "Bearer", **claims}


async def _sign_in_alive(session: AsyncSession, sid: object) -> bool:
    try:
        family_id = uuid.UUID(str(sid))
    except ValueError:
        return False
    return await repository.family_alive(session, family_id)
