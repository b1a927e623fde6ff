from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tongban_identity.sessions.grants import GRANTS
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens.schemas import DiscoveryDocument
from tongban_kit.auth import ACCESS_TOKEN_ALGORITHM, ASSURANCE_LEVELS

router = APIRouter(tags=["discovery"])

ACCESS_TOKEN_CLAIMS = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "scope",
    "acr",
    "amr",
    "auth_time",
    "node",
]


@router.get("/.well-known/openid-configuration", response_model=DiscoveryDocument)
async def openid_configuration(request: Request, response: Response) -> DiscoveryDocument:
    """The issuer's discovery document (OpenID Connect Discovery 1.0).

    Access: public. Lists only endpoints that exist (introspection joins it when it does).
    """
    settings: IdentitySettings = request.app.state.settings
    response.headers["Cache-Control"] = "public, max-age=300"
    return DiscoveryDocument(
        issuer=settings.issuer,
        jwks_uri=f"{settings.issuer}/.well-known/jwks.json",
        token_endpoint=f"{settings.issuer}/oauth/token",
        revocation_endpoint=f"{settings.issuer}/oauth/revoke",
        grant_types_supported=sorted(GRANTS),
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=[ACCESS_TOKEN_ALGORITHM],
        acr_values_supported=list(ASSURANCE_LEVELS),
        claims_supported=ACCESS_TOKEN_CLAIMS,
    )
