"""Operators grant and revoke persons' scopes (officer roles)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tongban_identity.persons import scopes
from tongban_identity.persons.scope_schemas import PersonScopes, ScopeChange
from tongban_kit.auth import OPERATOR_SCOPE, AccessClaims, require
from tongban_kit.db import SessionDep

router = APIRouter(prefix="/v1/admin/persons", tags=["persons (operators)"])
Operator = Annotated[AccessClaims, Depends(require(OPERATOR_SCOPE))]


def _by(operator: AccessClaims) -> str:
    return f"operator:{operator.sub}"[:100]


@router.get("/{person_id}/scopes", response_model=PersonScopes)
async def list_person_scopes(
    person_id: uuid.UUID, session: SessionDep, operator: Operator
) -> PersonScopes:
    """The scopes granted to a person on this node. Access: operators (`tongban:admin`)."""
    await scopes.existing_person(session, person_id)
    return PersonScopes(person_id=person_id, scopes=await scopes.granted(session, person_id))


@router.post("/{person_id}/scopes", response_model=PersonScopes)
async def grant_person_scopes(
    person_id: uuid.UUID,
    body: ScopeChange,
    session: SessionDep,
    request: Request,
    operator: Operator,
) -> PersonScopes:
    """Grant a person scopes (roles), e.g. `registration:review`: their tokens carry them from
    their next login or refresh on. Already granted ones change nothing.

    Access: operators (`tongban:admin`). 404 for an unknown person; 422 for an operator scope
    (`tongban:*`) or a malformed one. Audited as `scopes_granted`.
    """
    granted = await scopes.grant(
        session,
        person_id=person_id,
        scopes=body.scopes,
        by=_by(operator),
        node=request.app.state.settings.node.node_code,
    )
    return PersonScopes(person_id=person_id, scopes=granted)


@router.post("/{person_id}/scopes/revoke", response_model=PersonScopes)
async def revoke_person_scopes(
    person_id: uuid.UUID,
    body: ScopeChange,
    session: SessionDep,
    request: Request,
    operator: Operator,
) -> PersonScopes:
    """Revoke scopes from a person: effective at their sign-ins' next refresh (access tokens
    already issued keep them until they expire, minutes). Ones not held change nothing.

    Access: operators (`tongban:admin`). 404 for an unknown person. Audited as
    `scopes_revoked`.
    """
    remaining = await scopes.revoke(
        session,
        person_id=person_id,
        scopes=body.scopes,
        by=_by(operator),
        node=request.app.state.settings.node.node_code,
    )
    return PersonScopes(person_id=person_id, scopes=remaining)
