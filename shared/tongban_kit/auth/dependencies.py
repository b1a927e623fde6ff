"""``require(...)``: the FastAPI dependency that turns a bearer token into ``AccessClaims``.

``create_base_app`` wires every service (identity, which publishes the keys, wires its own):
in the lifespan, ``token_verification`` sets ``app.state.jwks`` (a ``JwksCache`` kept fresh by
a background task), ``app.state.token_issuer`` and ``app.state.token_audience`` from the node
settings. An endpoint then declares what it needs::

    Applicant = Annotated[
        AccessClaims, Depends(require("registration:apply", min_acr="substantial"))
    ]

    @router.post("/v1/applications")
    async def apply(caller: Applicant) -> ...: ...

Refusals are ``TongbanError``s carrying their ``WWW-Authenticate`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tongban_kit.auth.challenges import InsufficientScope, InvalidToken, StepUpRequired
from tongban_kit.auth.claims import AccessClaims, AssuranceLevel, Principal, assurance_at_least
from tongban_kit.auth.jwks import JwksCache
from tongban_kit.auth.verify import verify_access_token
from tongban_kit.errors import Forbidden

__all__ = ["require", "token_verification"]

# auto_error=False: the answer to a missing token is ours (problem+json with a challenge).
_BEARER = HTTPBearer(
    bearerFormat="JWT",
    description="An ES256 access token from the node's identity service.",
    auto_error=False,
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


def require(
    *scopes: str,
    min_acr: AssuranceLevel | None = None,
    principals: Collection[Principal] | None = None,
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[AccessClaims]]:
    """A dependency returning the caller's verified claims, or refusing the request.

    401 ``invalid_token`` for no or a bad token, 403 ``insufficient_scope`` when one of
    ``scopes`` was not granted, 403 when the caller is not one of ``principals`` (say, only
    ``"department"``), 401 ``insufficient_user_authentication`` naming the level
    (``required_acr``, ``acr_values``) when the person signed in below ``min_acr`` and must
    step up (RFC 9470). 503 when identity's keys cannot be fetched.
    """
    allowed = frozenset(principals) if principals is not None else None

    async def dependency(request: Request, credentials: Credentials) -> AccessClaims:
        if credentials is None:
            raise InvalidToken("this request needs a bearer access token", missing=True)
        jwks, issuer, audience = _wiring(request.app)
        claims = await verify_access_token(
            credentials.credentials,
            jwks=jwks,
            issuer=issuer,
            audience=audience,
            visitors=getattr(request.app.state, "visitors", None),
        )
        missing = tuple(scope for scope in scopes if scope not in claims.scopes)
        if missing:
            raise InsufficientScope(
                f"the token lacks the scope(s) {' '.join(missing)}", required_scopes=scopes
            )
        if allowed is not None and claims.principal not in allowed:
            raise Forbidden(
                f"this request is for {' or '.join(sorted(allowed))} callers, "
                f"not a {claims.principal}",
                allowed_principals=sorted(allowed),
            )
        if min_acr is not None and not assurance_at_least(claims.acr, min_acr):
            raise StepUpRequired(
                f"this request needs level of assurance {min_acr!r}; sign in again at it",
                required_acr=min_acr,
            )
        return claims

    return dependency


def _wiring(app: FastAPI) -> tuple[JwksCache, str, str]:
    state = app.state
    jwks = getattr(state, "jwks", None)
    issuer = getattr(state, "token_issuer", None)
    audience = getattr(state, "token_audience", None)
    if not isinstance(jwks, JwksCache) or not issuer or not audience:
        # A wiring mistake, not the caller's: a 500 with this in the log.
        raise RuntimeError(
            "app.state.jwks, token_issuer and token_audience must be set in the lifespan "
            "(tongban_kit.auth.token_verification)"
        )
    return jwks, issuer, audience


@contextlib.asynccontextmanager
async def token_verification(
    app: FastAPI,
    *,
    jwks_url: str,
    issuer: str,
    audience: str,
    http_client: httpx.AsyncClient | None = None,
    refresh_s: float = 300.0,
    min_refetch_s: float = 10.0,
) -> AsyncIterator[JwksCache]:
    """For a lifespan: the app's ``JwksCache`` and expected issuer and audience, in state.

    The cache refreshes in a background task while the app runs. Without ``http_client``
    one is built here and closed on exit.
    """
    client = http_client or httpx.AsyncClient()
    jwks = JwksCache(jwks_url, client, refresh_s=refresh_s, min_refetch_s=min_refetch_s)
    app.state.jwks = jwks
    app.state.token_issuer = issuer
    app.state.token_audience = audience
    refresher = asyncio.create_task(jwks.run(), name="jwks-refresh")
    try:
        yield jwks
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        if http_client is None:
            await client.aclose()
