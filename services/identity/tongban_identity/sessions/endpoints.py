from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from tongban_identity.departments.errors import OAuthError
from tongban_identity.sessions import grants, login, refresh, totp
from tongban_identity.sessions.issuing import TokenPolicy
from tongban_identity.sessions.schemas import (
    LoginRequest,
    LogoutRequest,
    TokenResponse,
    TotpConfirm,
    TotpEnrolment,
    TotpStatus,
)
from tongban_kit.auth import AccessClaims, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import Forbidden
from tongban_kit.openapi import problem_responses

router = APIRouter(tags=["sign-in"])
oauth_router = APIRouter(prefix="/oauth", tags=["oauth"])

Caller = Annotated[AccessClaims, Depends(require())]


def _person(caller: AccessClaims) -> uuid.UUID:
    try:
        return uuid.UUID(caller.sub)
    except ValueError:
        raise Forbidden("only a person's access token can do this") from None


@router.post("/v1/login", response_model=TokenResponse)
async def login_with_password(
    body: LoginRequest, session: SessionDep, request: Request, response: Response
) -> TokenResponse:
    """Sign a person in with resident ID number and password, plus `totp` once enabled.

    Access: public. Returns an access token (`acr` = the person's level of assurance, `amr`
    `["pwd"]` or `["pwd", "otp"]`) and the first refresh token of a new sign-in. An unknown
    account and a wrong password get the same 401; after repeated failures per account or per
    address the answer is 429 with `Retry-After` until the back-off has passed.
    """
    tokens = await login.login(
        session,
        credentials=login.Credentials(body.resident_id, body.password, body.totp),
        context=login.LoginContext.of(request.app.state, ip=grants.client_ip(request)),
        now=datetime.now(UTC),
    )
    response.headers.update(grants.NO_STORE)
    return tokens


@router.post("/v1/logout", status_code=204)
async def logout(
    body: LogoutRequest, caller: Caller, session: SessionDep, request: Request
) -> None:
    """End the caller's sign-in: its refresh token and every token rotated from it.

    Access: the person, with an access token; `refresh_token` must be of their own sign-in
    (403 otherwise). Already ended or unknown: 204 too. Access tokens already issued still
    verify offline until they expire (minutes), but introspect as inactive from now on.
    """
    await refresh.revoke(
        session,
        TokenPolicy.of(request.app.state),
        refresh_token=body.refresh_token,
        via="logout",
        ip=grants.client_ip(request),
        now=datetime.now(UTC),
        person_id=_person(caller),
    )


@router.post("/v1/me/totp", response_model=TotpEnrolment)
async def enrol_totp(caller: Caller, session: SessionDep, request: Request) -> TotpEnrolment:
    """Start TOTP enrolment: a new secret and its `otpauth://` URI (show it as a QR code).

    Access: the person, with an access token. Nothing changes at login until the enrolment is
    confirmed with a code; calling again before that replaces the secret. 409 once enabled.
    """
    state = request.app.state
    return await totp.enrol(
        session,
        person_id=_person(caller),
        personal_data=state.personal_data,
        node=state.settings.node.node_code,
        now=datetime.now(UTC),
    )


@router.post("/v1/me/totp/confirm", response_model=TotpStatus)
async def confirm_totp(
    body: TotpConfirm, caller: Caller, session: SessionDep, request: Request
) -> TotpStatus:
    """Confirm TOTP enrolment with the app's current code; from then on login needs `totp`.

    Access: the person, with an access token. 400 if the code does not match; 409 with no
    enrolment pending or TOTP already enabled.
    """
    state = request.app.state
    return await totp.confirm(
        session,
        person_id=_person(caller),
        code=body.code,
        personal_data=state.personal_data,
        node=state.settings.node.node_code,
        ip=grants.client_ip(request),
        now=datetime.now(UTC),
    )


_TOKEN_FORM = grants.form_body(
    {
        "grant_type": {"type": "string", "enum": sorted(grants.GRANTS)},
        "refresh_token": {"type": "string", "description": "For `refresh_token`."},
        "scope": {"type": "string", "description": "Optional: narrow the access token's scope."},
    },
    ["grant_type"],
)


@oauth_router.post(
    "/token",
    response_model=TokenResponse,
    openapi_extra=_TOKEN_FORM,
    responses=problem_responses(401),  # invalid_client
)
async def token(request: Request, session: SessionDep) -> Response:
    """OAuth 2 token endpoint (RFC 6749 §3.2), form-encoded; `grant_type=refresh_token` rotates
    a refresh token into a new pair.

    Access: whoever holds the refresh token (portals are public clients). Errors are 400
    problems with an RFC 6749 `error` member: `invalid_request`, `invalid_grant` (unknown,
    expired, revoked or reused token; reuse ends the whole sign-in), `invalid_scope`,
    `unsupported_grant_type`.
    """
    try:
        tokens = await grants.exchange(session, request)
    except OAuthError as error:
        # Answered here, not raised further: the request's transaction then commits what the
        # grant wrote before refusing, i.e. a family revoked for reuse and its audit event. A
        # raised error would roll that back and leave the stolen token's family alive.
        return grants.error_response(error, request)
    return JSONResponse(tokens.model_dump(exclude_none=True), headers=grants.NO_STORE)


_REVOKE_FORM = grants.form_body(
    {
        "token": {"type": "string", "description": "The refresh token to revoke."},
        "token_type_hint": {"type": "string", "enum": ["refresh_token", "access_token"]},
    },
    ["token"],
)


@oauth_router.post(
    "/revoke",
    status_code=200,
    response_class=Response,
    responses={200: {"description": "Revoked, or not a token this node knows.", "content": {}}},
    openapi_extra=_REVOKE_FORM,
)
async def revoke(request: Request, session: SessionDep) -> Response:
    """OAuth 2 token revocation (RFC 7009), form-encoded: ends the refresh token's sign-in.

    Access: whoever holds the token. 200 whether or not the token was known (RFC 7009 §2.2);
    access tokens are not revocable by themselves (they expire within minutes; those of a revoked
    sign-in introspect as inactive), so they also get 200. 400
    `invalid_request` for a malformed request.
    """
    try:
        form = await grants.read_form(request)
        await refresh.revoke(
            session,
            TokenPolicy.of(request.app.state),
            refresh_token=grants.required(form, "token"),
            via="revocation",
            ip=grants.client_ip(request),
            now=datetime.now(UTC),
        )
    except OAuthError as error:
        return grants.error_response(error, request)
    return Response(status_code=200, headers=grants.NO_STORE)
