from __future__ import annotations

from fastapi import APIRouter, Response

from tongban_identity.keys import service
from tongban_identity.keys.schemas import JwkSet, PublicJwk
from tongban_kit.db import SessionDep

router = APIRouter(tags=["keys"])

#: Verifiers may keep the key set this long; a next key is published well before it signs.
JWKS_MAX_AGE_S = 300


@router.get("/.well-known/jwks.json", response_model=JwkSet)
async def jwks(session: SessionDep, response: Response) -> JwkSet:
    """The node's public token signing keys (RFC 7517).

    Access: public. Holds the active key, the next key (published before it signs) and
    retired keys whose tokens may still be valid; cacheable for five minutes.
    """
    keys = await service.published_keys(session)
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_S}"
    return JwkSet(keys=[PublicJwk.model_validate(key) for key in keys])
