"""The OAuth token endpoint's grants (RFC 6749), dispatched by ``grant_type``.

A grant is an async function ``(session, TokenRequest) -> <token response model>`` raising the
RFC 6749 errors of ``departments.errors``; adding one is one entry in ``GRANTS`` (the
discovery document lists its keys as ``grant_types_supported``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments import service as departments_service
from tongban_identity.departments.errors import InvalidRequest, OAuthError, UnsupportedGrantType
from tongban_identity.keys.sealing import KeyVault
from tongban_identity.sessions import refresh
from tongban_identity.sessions.issuing import TokenPolicy
from tongban_identity.sessions.schemas import MAX_REFRESH_TOKEN_LENGTH
from tongban_identity.settings import IdentitySettings
from tongban_kit.errors import problem_response

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
#: RFC 6749 §5.1: responses carrying tokens (and their errors) must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FIELDS = 20


@dataclass(frozen=True)
class TokenRequest:
    """One token request, as every grant sees it."""

    form: Mapping[str, str]
    settings: IdentitySettings
    vault: KeyVault
    ip: str | None
    now: datetime
    state: Any  # app.state, for whatever else a grant needs

    @classmethod
    def of(cls, request: Request, form: Mapping[str, str]) -> TokenRequest:
        state = request.app.state
        return cls(
            form=form,
            settings=state.settings,
            vault=state.key_vault,
            ip=client_ip(request),
            now=datetime.now(UTC),
            state=state,
        )


Grant = Callable[[AsyncSession, TokenRequest], Awaitable[BaseModel]]


def client_ip(request: Request) -> str | None:
    """The caller's address as the server saw it (behind the gateway, uvicorn's
    ``--forwarded-allow-ips`` must name the gateway for this to be the real client)."""
    return request.client.host if request.client else None


async def read_form(request: Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body as a dict (RFC 6749 §3.2).

    Empty values count as absent (§3.1); a repeated parameter, a body that is not UTF-8 or
    any other content type is ``invalid_request``.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise InvalidRequest(f"the body must be {FORM_CONTENT_TYPE}")
    try:
        pairs = parse_qsl(
            (await request.body()).decode("utf-8"),
            keep_blank_values=False,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError included
        raise InvalidRequest("the body is not a well-formed UTF-8 form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(f"the parameter {name[:40]!r} is repeated")
        form[name] = value
    return form


def required(form: Mapping[str, str], name: str, *, max_length: int = 4096) -> str:
    value = form.get(name)
    if value is None:
        raise InvalidRequest(f"the parameter {name!r} is required")
    if len(value) > max_length:
        raise InvalidRequest(f"the parameter {name!r} is too long")
    return value


async def refresh_token_grant(session: AsyncSession, request: TokenRequest) -> BaseModel:
    """RFC 6749 §6: a refresh token for a new pair. Portals are public clients: no client
    authentication; whoever holds the refresh token may use it, once."""
    return await refresh.rotate(
        session,
        TokenPolicy.of(request.state),
        refresh_token=required(request.form, "refresh_token", max_length=MAX_REFRESH_TOKEN_LENGTH),
        scope=request.form.get("scope"),
        ip=request.ip,
        now=request.now,
    )


async def client_credentials_grant(session: AsyncSession, request: TokenRequest) -> BaseModel:
    """A department's token, authenticated by ``private_key_jwt`` (RFC 7523)."""
    return await departments_service.client_credentials_grant(
        session,
        form=request.form,
        vault=request.vault,
        settings=request.settings,
        now=request.now,
        directory=request.state.client_directory,
    )


#: grant_type → grant.
GRANTS: dict[str, Grant] = {
    "refresh_token": refresh_token_grant,
    "client_credentials": client_credentials_grant,
}


async def exchange(session: AsyncSession, request: Request) -> BaseModel:
    """Read the token request and run its grant."""
    form = await read_form(request)
    grant_type = required(form, "grant_type", max_length=100)
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(f"this server supports grant_type {', '.join(sorted(GRANTS))}")
    return await grant(session, TokenRequest.of(request, form))


def error_response(error: OAuthError, request: Request) -> JSONResponse:
    return problem_response(
        error.status,
        error.title,
        error.detail,
        type_slug=error.type_slug,
        instance=request.url.path,
        headers={**NO_STORE, **(error.headers or {})},
        **error.extensions,
    )


def form_body(properties: dict[str, Any], required_fields: list[str]) -> dict[str, Any]:
    """OpenAPI text for a form body (FastAPI's ``Form`` would need python-multipart)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                FORM_CONTENT_TYPE: {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": required_fields,
                    }
                }
            },
        }
    }
