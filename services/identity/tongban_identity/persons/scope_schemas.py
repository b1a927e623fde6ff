from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tongban_identity.departments.schemas import OPERATOR_SCOPE_PREFIX, SCOPE_TOKEN

MAX_SCOPES_PER_CHANGE = 20


def valid_person_scopes(scopes: list[str]) -> list[str]:
    """Scope tokens, never an operator's (``tongban:*``); duplicates dropped, order kept."""
    for scope in scopes:
        if not SCOPE_TOKEN.match(scope):
            raise ValueError("a scope is 1 to 200 characters without spaces or quotes")
        if scope.startswith(OPERATOR_SCOPE_PREFIX):
            raise ValueError(f"{scope} is an operator scope and is not granted to persons")
    return list(dict.fromkeys(scopes))


class ScopeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(
        min_length=1,
        max_length=MAX_SCOPES_PER_CHANGE,
        description="Scopes (roles) to grant or revoke, e.g. `registration:review`. "
        f"`{OPERATOR_SCOPE_PREFIX}*` scopes are refused.",
    )

    @field_validator("scopes")
    @classmethod
    def _valid(cls, scopes: list[str]) -> list[str]:
        return valid_person_scopes(scopes)


class PersonScopes(BaseModel):
    person_id: uuid.UUID
    scopes: list[str] = Field(description="The person's granted scopes, sorted.")
