from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from tongban_identity.departments.client_keys import ALGORITHMS
from tongban_identity.departments.errors import OAuthError
from tongban_identity.departments.own_tokens import token_endpoint
from tongban_identity.sessions import grants
from tongban_identity.sessions.grants import GRANTS
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens import introspection
from tongban_identity.tokens.schemas import DiscoveryDocument, IntrospectionResponse
from tongban_kit.auth import ACCESS_TOKEN_ALGORITHM, ASSURANCE_LEVELS
from tongban_kit.db import SessionDep
from tongban_kit.openapi import problem_responses

router = APIRouter(tags=["discovery"])

#: Every claim an access token of this node may carry.
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
    "sid",
    "client_id",
    "department",
    "department_name",
    "business",
]
PRIVATE_KEY_JWT = "private_key_jwt"


@router.get("/.well-known/openid-configuration", response_model=DiscoveryDocument)
async def openid_configuration(request: Request, response: Response) -> DiscoveryDocument:
    """The issuer's discovery document (OpenID Connect Discovery 1.0, RFC 8414).

    Access: public. Lists only endpoints that exist.
    """
    settings: IdentitySettings = request.app.state.settings
    response.headers["Cache-Control"] = "public, max-age=300"
    issuer = settings.issuer
    return DiscoveryDocument(
        issuer=issuer,
        jwks_uri=f"{issuer}/.well-known/jwks.json",
        token_endpoint=token_endpoint(settings),
        token_endpoint_auth_methods_supported=[PRIVATE_KEY_JWT],
        token_endpoint_auth_signing_alg_values_supported=sorted(set(ALGORITHMS.values())),
        revocation_endpoint=f"{issuer}/oauth/revoke",
        revocation_endpoint_auth_methods_supported=["none"],
        introspection_endpoint=introspection.introspection_endpoint(settings),
        introspection_endpoint_auth_methods_supported=[PRIVATE_KEY_JWT],
        introspection_endpoint_auth_signing_alg_values_supported=sorted(set(ALGORITHMS.values())),
        grant_types_supported=sorted(GRANTS),
        subject_types_supported=["public", "pairwise"],
        id_token_signing_alg_values_supported=[ACCESS_TOKEN_ALGORITHM],
        acr_values_supported=list(ASSURANCE_LEVELS),
        claims_supported=ACCESS_TOKEN_CLAIMS,
        tongban_document_jwks_uri=f"{issuer}/.well-known/document-jwks.json",
    )


_INTROSPECT_FORM = grants.form_body(
    {
        "token": {"type": "string", "description": "The access token to introspect."},
        "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
        "client_assertion_type": {"type": "string", "description": "For private_key_jwt."},
        "client_assertion": {"type": "string", "description": "For private_key_jwt."},
    },
    ["token"],
)


@router.post(
    "/oauth/introspect",
    response_model=IntrospectionResponse,
    response_model_exclude_none=True,
    openapi_extra=_INTROSPECT_FORM,
    responses=problem_responses(401, 403),
    tags=["oauth"],
)
async def introspect(request: Request, session: SessionDep) -> Response:
    """OAuth 2 token introspection (RFC 7662), form-encoded: whether an access token is
    active, and its claims if it is.

    Access: an OAuth client of this node authenticated as at the token endpoint
    (`private_key_jwt`: `client_assertion_type` and `client_assertion` in the form), or a
    bearer access token with the scope `identity:introspect`. Anything but an active access
    token of this issuer answers `{"active": false}` (expired, revoked with its sign-in,
    unknown key, another issuer, a refresh token, garbage). 401 `invalid_client` or
    `invalid_token` for a failed caller authentication, 403 without the scope, 400
    `invalid_request` without `token`.
    """
    state = request.app.state
    settings: IdentitySettings = state.settings
    try:
        form = await grants.read_form(request)
        token = grants.required(form, "token", max_length=introspection.MAX_TOKEN_CHARS)
        await introspection.authenticate_caller(
            session,
            authorization=request.headers.get("authorization"),
            form=form,
            jwks=state.jwks,
            settings=settings,
            now=datetime.now(UTC),
        )
    except OAuthError as error:
        return grants.error_response(error, request)
    answer = await introspection.introspect(session, token, jwks=state.jwks, settings=settings)
    return JSONResponse(answer, headers=grants.NO_STORE)
