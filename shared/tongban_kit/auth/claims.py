"""What a verified access token says: its claims, and the levels of assurance they rank."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "ASSURANCE_LEVELS",
    "OPERATOR_SCOPE",
    "AccessClaims",
    "AssuranceLevel",
    "Principal",
    "assurance_at_least",
]

Principal = Literal["person", "business", "department", "operator"]
#: The scope of the node's operators (the admin API).
OPERATOR_SCOPE = "tongban:admin"

AssuranceLevel = Literal["low", "substantial", "high"]
#: Lowest first: ``low`` self-asserted, ``substantial`` checked against a department's
#: records, ``high`` checked in person or by certificate.
ASSURANCE_LEVELS: tuple[AssuranceLevel, ...] = get_args(AssuranceLevel)


def assurance_at_least(actual: str | None, required: AssuranceLevel) -> bool:
    """Whether a token's ``acr`` meets ``required``; no or an unknown level meets none."""
    if actual not in ASSURANCE_LEVELS:
        return False
    return ASSURANCE_LEVELS.index(actual) >= ASSURANCE_LEVELS.index(required)


def _as_tuple(value: object) -> object:
    # RFC 7519 allows a single audience as a plain string.
    return (value,) if isinstance(value, str) else value


class AccessClaims(BaseModel):
    """The claims of an access token (RFC 9068 profile) once its signature is verified.

    ``acr``, ``amr`` and ``auth_time`` describe how a person signed in; a department's
    client-credentials token has none of them, so none of them is required here.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    iss: str = Field(description="Issuer: the identity service of the node that signed it.")
    sub: str = Field(min_length=1, description="Subject: whom the token speaks for.")
    aud: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] = Field(
        min_length=1, description="Audiences the token is meant for."
    )
    exp: datetime = Field(description="Expiry.")
    iat: datetime = Field(description="Issued at.")
    nbf: datetime | None = Field(default=None, description="Not valid before.")
    jti: str = Field(min_length=1, description="Token id, unique per token (for revocation).")
    scope: str = Field(description="Granted scopes, space separated (may be empty).")
    node: str = Field(pattern=r"^\d{6}$", description="Division code of the issuing node.")
    acr: AssuranceLevel | None = Field(default=None, description="Level of assurance.")
    amr: tuple[str, ...] = Field(default=(), description="How the person authenticated.")
    auth_time: datetime | None = Field(default=None, description="When the person signed in.")
    client_id: str | None = Field(default=None, description="The OAuth client (a department).")
    department: str | None = Field(
        default=None, description="Code of the department a client-credentials token is for."
    )
    department_name: str | None = Field(default=None, description="That department's name.")
    business: str | None = Field(
        default=None,
        pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$",
        description="USCC of the business a person is acting for (a recorded delegation).",
    )

    @property
    def principal(self) -> Principal:
        """Who is calling: an ``operator`` (``tongban:admin``), a ``department`` (client
        credentials), a person acting for a ``business``, or a ``person``."""
        if OPERATOR_SCOPE in self.scopes:
            return "operator"
        if self.department is not None:
            return "department"
        if self.business is not None:
            return "business"
        return "person"

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes as a set."""
        return frozenset(self.scope.split())
