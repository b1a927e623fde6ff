from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tongban_identity.departments.client_keys import normalise_jwks
from tongban_identity.departments.models import CODE_PATTERN
from tongban_identity.pairwise import RESOLVE_SCOPE

#: RFC 6749 §3.3 scope-token.
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")
#: Scopes under this prefix are the operators'; no department is ever granted one.
OPERATOR_SCOPE_PREFIX = "tongban:"
#: Nor these: a department that could resolve pseudonyms could link everyone's.
RESERVED_SCOPES = frozenset({RESOLVE_SCOPE})
MAX_SCOPES = 50


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(
        pattern=CODE_PATTERN,
        description="Short code naming the department on this node, e.g. `tax`: lower-case "
        "letters, digits and hyphens, 2 to 32 characters. Tokens carry it as `department`.",
    )
    name: str = Field(
        min_length=1,
        max_length=200,
        description="The department's official name, e.g. 国家税务总局深圳市税务局.",
    )
    scopes: list[str] = Field(
        min_length=1,
        max_length=MAX_SCOPES,
        description="Scopes the department may ask for, e.g. `exchange:subscribe`. "
        f"`{OPERATOR_SCOPE_PREFIX}*` scopes are the operators' and are refused, and so is "
        f"`{RESOLVE_SCOPE}`.",
    )
    jwks: dict[str, Any] = Field(
        description="The department's public keys (RFC 7517 JWKS, 1 to 5 keys): EC P-256 for "
        "ES256 or OKP Ed25519 for EdDSA, each with a `kid`. Its client assertions must be "
        "signed by one of them. Private members are refused."
    )

    @field_validator("scopes")
    @classmethod
    def _valid_scopes(cls, scopes: list[str]) -> list[str]:
        for scope in scopes:
            if not SCOPE_TOKEN.match(scope):
                raise ValueError("a scope is 1 to 200 characters without spaces or quotes")
            if scope.startswith(OPERATOR_SCOPE_PREFIX) or scope in RESERVED_SCOPES:
                raise ValueError(f"{scope} is not granted to departments")
        return list(dict.fromkeys(scopes))

    @field_validator("jwks")
    @classmethod
    def _valid_jwks(cls, jwks: dict[str, Any]) -> dict[str, Any]:
        return normalise_jwks(jwks)


class DepartmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    client_id: str = Field(description="The OAuth client id, `dept-<code>-<random>`.")
    code: str
    name: str
    node: str = Field(description="Division code of the node the department is enrolled at.")
    scopes: list[str]
    jwks: dict[str, Any] = Field(description="The registered public keys.")
    created_at: datetime
    disabled_at: datetime | None = Field(description="Set once disabled; it gets no token since.")


class DepartmentList(BaseModel):
    items: list[DepartmentOut]


class TokenResponse(BaseModel):
    """A successful token response (RFC 6749 §5.1). No refresh token: a department asks again."""

    access_token: str = Field(description="An ES256 access token (JWT, RFC 9068).")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 -- a token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")
    scope: str = Field(description="The scopes granted, space separated.")
