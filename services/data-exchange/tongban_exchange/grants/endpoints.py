from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tongban_exchange.grants import service
from tongban_exchange.grants.schemas import Decision, GrantOut, GrantRequest
from tongban_kit.auth import AccessClaims, InsufficientScope, require
from tongban_kit.db import SessionDep

#: A department asks for data, lists its grants and receives (pull, redelivery).
SUBSCRIBE_SCOPE = "exchange:subscribe"
#: An owner department decides on requests for its datasets.
APPROVE_SCOPE = "exchange:approve"

router = APIRouter(prefix="/v1/grants", tags=["grants"])
Subscriber = Annotated[AccessClaims, Depends(require(SUBSCRIBE_SCOPE, principals=("department",)))]
AnyParty = Annotated[AccessClaims, Depends(require(principals=("department", "operator")))]
Approver = AnyParty


def _approver(caller: AccessClaims) -> AccessClaims:
    if caller.principal == "department" and APPROVE_SCOPE not in caller.scopes:
        raise InsufficientScope(
            f"the token lacks the scope(s) {APPROVE_SCOPE}", required_scopes=(APPROVE_SCOPE,)
        )
    return caller


@router.post("", status_code=201, response_model=GrantOut)
async def request_grant(
    body: GrantRequest, session: SessionDep, request: Request, caller: Subscriber
) -> GrantOut:
    """Ask for a dataset: purpose, legal basis, fields and delivery mode.

    Access: departments with `exchange:subscribe`; the grant is for the department the token
    names. `unconditional` datasets are granted at once (`status: granted`), `conditional`
    ones wait for the owner (`status: requested`), `none` is refused (403). A department's
    first webhook grant returns its signing secret, once.
    """
    grant, secret = await service.request(
        session,
        department=str(caller.department),
        body=body,
        cipher=request.app.state.exchange.cipher,
    )
    out = GrantOut.model_validate(grant)
    out.webhook_secret = secret
    return out


@router.get("", response_model=list[GrantOut])
async def list_grants(session: SessionDep, caller: AnyParty) -> list[GrantOut]:
    """The caller's own grants.

    Access: departments (their own grants only) and operators (`tongban:admin`, all grants).
    """
    return [GrantOut.model_validate(g) for g in await service.own(session, caller)]


@router.get("/requests", response_model=list[GrantOut])
async def awaiting_decision(session: SessionDep, caller: Approver) -> list[GrantOut]:
    """Requests for the caller's datasets that wait for a decision.

    Access: owner departments with `exchange:approve`; operators see every request.
    """
    _approver(caller)
    return [GrantOut.model_validate(g) for g in await service.awaiting(session, caller)]


@router.get("/{grant_id}", response_model=GrantOut)
async def get_grant(grant_id: uuid.UUID, session: SessionDep, caller: AnyParty) -> GrantOut:
    """One grant.

    Access: the grantee department, the dataset's owner department, operators; 404 for
    anyone else, so a department cannot learn of another's grants.
    """
    return GrantOut.model_validate(await service.visible(session, grant_id, caller))


@router.post("/{grant_id}/approve", response_model=GrantOut)
async def approve_grant(
    grant_id: uuid.UUID, body: Decision, session: SessionDep, caller: Approver
) -> GrantOut:
    """Approve a request for a conditional dataset; delivery starts with the next event.

    Access: the dataset's owner department with `exchange:approve`, or operators. 409 unless
    the grant is awaiting a decision.
    """
    grant = await service.decide(
        session, grant_id=grant_id, caller=_approver(caller), approve=True, note=body.note
    )
    return GrantOut.model_validate(grant)


@router.post("/{grant_id}/deny", response_model=GrantOut)
async def deny_grant(
    grant_id: uuid.UUID, body: Decision, session: SessionDep, caller: Approver
) -> GrantOut:
    """Deny a request for a conditional dataset.

    Access: the dataset's owner department with `exchange:approve`, or operators.
    """
    grant = await service.decide(
        session, grant_id=grant_id, caller=_approver(caller), approve=False, note=body.note
    )
    return GrantOut.model_validate(grant)


@router.post("/{grant_id}/revoke", response_model=GrantOut)
async def revoke_grant(grant_id: uuid.UUID, session: SessionDep, caller: AnyParty) -> GrantOut:
    """Revoke a grant: nothing more is routed to it and pending deliveries are cancelled.

    Access: the grantee department, the dataset's owner department, or operators.
    """
    return GrantOut.model_validate(await service.revoke(session, grant_id=grant_id, caller=caller))
