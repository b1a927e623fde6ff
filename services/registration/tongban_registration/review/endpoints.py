from __future__ import annotations

import uuid
from typing import Literal, Self

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tongban_kit.db import SessionDep
from tongban_registration import idempotency
from tongban_registration.applications import views
from tongban_registration.applications.schemas import ApplicationList, ApplicationOut, Problem
from tongban_registration.applications.states import Action
from tongban_registration.businesses import deregistration
from tongban_registration.businesses import service as businesses
from tongban_registration.businesses.schemas import BusinessOut
from tongban_registration.deps import CipherDep, IdentityDep, Officer, SettingsDep
from tongban_registration.review import service

router = APIRouter(prefix="/v1/review", tags=["review"])


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "reject", "return"]
    reason: str | None = Field(
        default=None, max_length=2000, description="Required to reject; optional otherwise."
    )
    problems: list[Problem] | None = Field(
        default=None,
        max_length=100,
        description="Required to return: every problem at once (一次性告知).",
    )

    @model_validator(mode="after")
    def _what_each_decision_needs(self) -> Self:
        if self.decision == "reject" and not self.reason:
            raise ValueError("a rejection needs a reason")
        if self.decision == "return" and not self.problems:
            raise ValueError("a return lists every problem to correct")
        if self.decision != "return" and self.problems:
            raise ValueError("problems go with a return only")
        return self


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=2000)


@router.get("/applications", response_model=ApplicationList)
async def review_queue(caller: Officer, session: SessionDep, cipher: CipherDep) -> ApplicationList:
    """Applications waiting for a decision (submitted, resubmitted, under review), the
    earliest promised date first. Access: officers of this node (scope `registration:review`)."""
    rows = await service.queue(session)
    return ApplicationList(
        items=[
            await views.application_out(session, a, cipher=cipher, officer=True, full=False)
            for a in rows
        ]
    )


@router.get("/overdue", response_model=ApplicationList)
async def overdue_applications(
    caller: Officer, session: SessionDep, cipher: CipherDep, request: Request
) -> ApplicationList:
    """Undecided applications past their promised date (`due_on`). Access: officers of this
    node. Also counted in the metric `tongban_registration_overdue_applications`."""
    rows = await service.overdue(session)
    request.app.state.overdue_gauge.set(len(rows))
    return ApplicationList(
        items=[
            await views.application_out(session, a, cipher=cipher, officer=True, full=False)
            for a in rows
        ]
    )


@router.get("/applications/{application_id}", response_model=ApplicationOut)
async def review_application(
    application_id: uuid.UUID, caller: Officer, session: SessionDep, cipher: CipherDep
) -> ApplicationOut:
    """A submitted application with its history. Access: officers of this node."""
    application = await service.get(session, application_id=application_id)
    return await views.application_out(session, application, cipher=cipher, officer=True)


@router.post("/applications/{application_id}/claim", response_model=ApplicationOut)
async def claim_application(
    application_id: uuid.UUID, caller: Officer, session: SessionDep, cipher: CipherDep
) -> ApplicationOut:
    """Take a submitted application into review (→ `under_review`). Access: officers of this
    node. 409 naming the state when it is not waiting for review."""
    application = await service.claim(session, application_id=application_id, officer=caller.sub)
    return await views.application_out(session, application, cipher=cipher, officer=True)


@router.post("/applications/{application_id}/decision", response_model=ApplicationOut)
async def decide_application(
    application_id: uuid.UUID,
    body: Decision,
    caller: Officer,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
    identity: IdentityDep,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> JSONResponse:
    """Approve, reject (with a reason) or return for correction (with every problem).

    Access: the officer of this node who claimed the application. Approval issues the USCC,
    enters the business in the register, signs its electronic licence (through identity) and emits
    `gov.tongban.registration.business.registered.v1` and `...application.approved.v1`;
    the others emit `...application.rejected.v1` / `...application.returned.v1`.
    `Idempotency-Key` makes a retry return the first answer.
    """

    async def run() -> ApplicationOut:
        application = await service.decide(
            session,
            application_id=application_id,
            officer=caller.sub,
            decision=Action(body.decision),
            reason=body.reason,
            problems=[p.model_dump() for p in body.problems] if body.problems else None,
            settings=settings,
            cipher=cipher,
            identity=identity,
        )
        return await views.application_out(session, application, cipher=cipher, officer=True)

    return await idempotency.once(
        session,
        caller=caller.sub,
        key=idempotency_key,
        operation=f"decide {application_id}",
        payload=body,
        status_code=200,
        run=run,
    )


@router.post("/businesses/{uscc}/revoke", response_model=BusinessOut)
async def revoke_business(
    uscc: str, body: Revocation, caller: Officer, session: SessionDep, settings: SettingsDep
) -> BusinessOut:
    """Revoke a business's licence (吊销营业执照). Access: officers of this node. The public
    register and licence verification show `revoked` from the next request. Emits
    `gov.tongban.registration.business.revoked.v1`."""
    business = await businesses.revoke(
        session, uscc=uscc, reason=body.reason, officer=caller.sub, node=settings.node.node_code
    )
    return businesses.public_view(business, acknowledgements=())


@router.post("/businesses/{uscc}/deregistration/complete", response_model=BusinessOut)
async def complete_deregistration(
    uscc: str, caller: Officer, session: SessionDep, settings: SettingsDep
) -> BusinessOut:
    """Complete a simplified deregistration whose public notice ended without objection: the
    business is `deregistered` and its name free again. Access: officers of this node. 409
    while the notice runs or when no deregistration is pending. Emits
    `gov.tongban.registration.business.deregistered.v1`."""
    business = await deregistration.complete(
        session, uscc=uscc, officer=caller.sub, node=settings.node.node_code
    )
    return businesses.public_view(business, acknowledgements=())
