from __future__ import annotations

from fastapi import APIRouter, Request, Response

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

    Access: public. Lists only endpoints that exist: the token, introspection and revocation
    endpoints join it as sign-in arrives.
    """
    settings: IdentitySettings = request.app.state.settings
    response.headers["Cache-Control"] = "public, max-age=300"
    return DiscoveryDocument(
        issuer=settings.issuer,
        jwks_uri=f"{settings.issuer}/.well-known/jwks.json",
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=[ACCESS_TOKEN_ALGORITHM],
        acr_values_supported=list(ASSURANCE_LEVELS),
        claims_supported=ACCESS_TOKEN_CLAIMS,
    )
