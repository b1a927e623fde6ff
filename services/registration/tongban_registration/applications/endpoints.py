from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tongban_kit.db import SessionDep
from tongban_registration import idempotency
from tongban_registration.applications import service, views
from tongban_registration.applications.schemas import (
    ApplicationCreate,
    ApplicationList,
    ApplicationOut,
    ApplicationPatch,
    SubmitRequest,
)
from tongban_registration.deps import CipherDep, IdentityDep, Person, SettingsDep, SubstantialPerson
from tongban_registration.review import service as review

router = APIRouter(prefix="/v1/applications", tags=["applications"])


class WithdrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str | None = Field(default=None, max_length=1000)


@router.post("", status_code=201, response_model=ApplicationOut)
async def create_application(
    body: ApplicationCreate,
    caller: Person,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> JSONResponse:
    """Start a business registration: a draft, and the proposed name reserved for it.

    Access: a signed-in person (any level of assurance), who becomes the applicant. 409 with
    `conflicting_name` when the name, or one equal to it after normalisation, is held.
    `Idempotency-Key` makes a retry return the first answer.
    """

    async def run() -> ApplicationOut:
        application = await service.create(
            session, applicant=caller.sub, body=body, settings=settings, cipher=cipher
        )
        return await views.application_out(session, application, cipher=cipher)

    return await idempotency.once(
        session,
        caller=caller.sub,
        key=idempotency_key,
        operation="create",
        payload=body,
        status_code=201,
        run=run,
    )


@router.get("", response_model=ApplicationList)
async def list_my_applications(
    caller: Person, session: SessionDep, cipher: CipherDep
) -> ApplicationList:
    """The caller's own applications, newest first. Access: a signed-in person."""
    rows = await service.of_applicant(session, applicant=caller.sub)
    return ApplicationList(
        items=[await views.application_out(session, a, cipher=cipher, full=False) for a in rows]
    )


@router.get("/{application_id}", response_model=ApplicationOut)
async def get_application(
    application_id: uuid.UUID, caller: Person, session: SessionDep, cipher: CipherDep
) -> ApplicationOut:
    """One application with its history and, once registered, the departments'
    acknowledgements. Access: its applicant only (404 for anyone else)."""
    application = await service.mine(session, applicant=caller.sub, application_id=application_id)
    return await views.application_out(session, application, cipher=cipher)


@router.patch("/{application_id}", response_model=ApplicationOut)
async def update_application(
    application_id: uuid.UUID,
    body: ApplicationPatch,
    caller: Person,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
) -> ApplicationOut:
    """Change a draft, or a returned application before resubmitting it.

    Access: its applicant. Only the fields of the draft can be sent (status, USCC and
    applicant are never settable: 422). 409 in any other state.
    """
    application = await service.update(
        session,
        applicant=caller.sub,
        application_id=application_id,
        patch=body,
        settings=settings,
        cipher=cipher,
    )
    return await views.application_out(session, application, cipher=cipher)


@router.post("/{application_id}/submit", response_model=ApplicationOut)
async def submit_application(
    application_id: uuid.UUID,
    caller: SubstantialPerson,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
    identity: IdentityDep,
    body: SubmitRequest | None = None,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> JSONResponse:
    """Submit a draft (or resubmit a returned application) for review.

    Access: its applicant, signed in at level `substantial` or above (401 with
    `insufficient_user_authentication` otherwise, to step up). Records the promised decision
    date (`due_on`, working days). An optional detached JWS (RFC 7797) of `document_sha256` by
    a key the applicant registered at identity is checked with identity (400 when it is not
    theirs) and kept with the submission. Entity types configured for instant approval that
    meet every rule are approved at once. Emits `gov.tongban.registration.application.submitted.v1`.
    """
    signature = body.signature if body else None

    async def run() -> ApplicationOut:
        application = await service.submit(
            session,
            applicant=caller.sub,
            application_id=application_id,
            signature=signature,
            settings=settings,
            cipher=cipher,
            identity=identity,
        )
        await review.instant_approval(
            session, application=application, settings=settings, cipher=cipher, identity=identity
        )
        return await views.application_out(session, application, cipher=cipher)

    return await idempotency.once(
        session,
        caller=caller.sub,
        key=idempotency_key,
        operation=f"submit {application_id}",
        payload={"signature": signature},
        status_code=200,
        run=run,
    )


@router.post("/{application_id}/withdraw", response_model=ApplicationOut)
async def withdraw_application(
    application_id: uuid.UUID,
    caller: Person,
    session: SessionDep,
    cipher: CipherDep,
    body: WithdrawRequest | None = None,
) -> ApplicationOut:
    """Withdraw an application before it is decided; its name is released.

    Access: its applicant. 409 once approved, rejected or already withdrawn.
    """
    application = await service.withdraw(
        session,
        applicant=caller.sub,
        application_id=application_id,
        reason=body.reason if body else None,
    )
    return await views.application_out(session, application, cipher=cipher)
