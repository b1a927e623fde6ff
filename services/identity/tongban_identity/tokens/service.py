"""Issuing access tokens. Nothing here commits; the caller's transaction reads the active key."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.keys import service as keys_service
from tongban_identity.keys.sealing import KeyVault
from tongban_identity.settings import MAX_ACCESS_TOKEN_TTL_S
from tongban_kit.auth import ACCESS_TOKEN_ALGORITHM, ACCESS_TOKEN_TYPE, AssuranceLevel

DEFAULT_ACCESS_TOKEN_TTL_S = 300
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3


async def issue_access_token(
    session: AsyncSession,
    *,
    vault: KeyVault,
    issuer: str,
    subject: str,
    audience: str | Sequence[str],
    scope: Iterable[str],
    acr: AssuranceLevel | None,
    amr: Sequence[str],
    auth_time: datetime | None,
    node: str,
    lifetime_s: int = DEFAULT_ACCESS_TOKEN_TTL_S,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A signed access token (a JWT, RFC 9068) for ``subject``, valid ``lifetime_s`` seconds,
    signed by the active key read in the caller's transaction (see ``sign_access_token``)."""
    key = await keys_service.active_key(session, vault=vault)
    return sign_access_token(
        key,
        issuer=issuer,
        subject=subject,
        audience=audience,
        scope=scope,
        acr=acr,
        amr=amr,
        auth_time=auth_time,
        node=node,
        lifetime_s=lifetime_s,
        extra_claims=extra_claims,
    )


def sign_access_token(
    key: keys_service.ActiveKey,
    *,
    issuer: str,
    subject: str,
    audience: str | Sequence[str],
    scope: Iterable[str],
    acr: AssuranceLevel | None,
    amr: Sequence[str],
    auth_time: datetime | None,
    node: str,
    lifetime_s: int = DEFAULT_ACCESS_TOKEN_TTL_S,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A signed access token (a JWT, RFC 9068) for ``subject``, valid ``lifetime_s`` seconds.

    Signed ES256 by the active key, whose id is in the header with ``typ: at+jwt``. Claims:
    ``iss sub aud exp iat nbf jti scope acr amr auth_time node``. Lifetimes over
    ``MAX_ACCESS_TOKEN_TTL_S`` (10 minutes) are refused: retired keys stay published only that
    long.

    ``acr`` None means no person signed in (a department's client credentials): the token then
    has no ``acr``, ``amr`` or ``auth_time``. ``extra_claims`` adds claims (e.g. ``client_id``,
    ``department``); it may not replace any of the above.
    """
    if not 0 < lifetime_s <= MAX_ACCESS_TOKEN_TTL_S:
        raise ValueError(f"an access token lives 1..{MAX_ACCESS_TOKEN_TTL_S} s, not {lifetime_s}")
    scopes = list(dict.fromkeys(scope))
    if not all(_SCOPE_TOKEN.match(s) for s in scopes):
        raise ValueError("a scope is a non-empty token without spaces or quotes")
    audiences = [audience] if isinstance(audience, str) else list(audience)
    if not audiences:
        raise ValueError("a token needs an audience")
    if (acr is None) != (auth_time is None) or (acr is None and amr):
        raise ValueError("acr, amr and auth_time describe a sign-in: all of them or none")
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audiences[0] if len(audiences) == 1 else audiences,
        "exp": now + lifetime_s,
        "iat": now,
        "nbf": now,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(scopes),
        "node": node,
    }
    if acr is not None and auth_time is not None:
        claims |= {"acr": acr, "amr": list(amr), "auth_time": int(auth_time.timestamp())}
    if extra_claims:
        if clash := set(extra_claims) & {*claims, "acr", "amr", "auth_time"}:
            raise ValueError(f"extra claims may not replace {sorted(clash)}")
        claims |= extra_claims
    return jwt.encode(
        claims,
        key.private_key,
        algorithm=ACCESS_TOKEN_ALGORITHM,
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
    )
