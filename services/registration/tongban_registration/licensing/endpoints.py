"""Accreditation licences (证照分离), the business's side: types, prerequisites, applying,
its licences and renewing them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tongban_kit.db import SessionDep
from tongban_registration import idempotency
from tongban_registration.deps import ExchangeDep, IdentityDep, PersonOrActing, SettingsDep
from tongban_registration.licensing import prerequisites, service, views
from tongban_registration.licensing.schemas import (
    LicenceApplicationCreate,
    LicenceApplicationList,
    LicenceApplicationOut,
    LicenceOut,
    LicenceTypeList,
    PrerequisitesOut,
)

router = APIRouter(tags=["accreditation licences"])


@router.get("/v1/licence-types", response_model=LicenceTypeList)
async def licence_types(settings: SettingsDep) -> LicenceTypeList:
    """The accreditation licences this node issues and what each presupposes.

    Access: public (configuration, no data).
    """
    return LicenceTypeList(items=settings.licence_types)


@router.get(
    "/v1/businesses/{uscc}/licence-types/{licence_type}/prerequisites",
    response_model=PrerequisitesOut,
)
async def check_prerequisites(
    uscc: str,
    licence_type: str,
    caller: PersonOrActing,
    session: SessionDep,
    settings: SettingsDep,
    exchange: ExchangeDep,
) -> PrerequisitesOut:
    """Whether the business meets every prerequisite of a licence type, and each one it
    does not, all at once (一次性告知), before it applies.

    Access: the business's legal representative or a person acting for it (404 otherwise).
    404 for a licence type this node does not issue.
    """
    kind = service.licence_type_of(settings, licence_type, in_path=True)
    business = await service.business_of_holder(session, caller=caller, uscc=uscc)
    unmet = await prerequisites.unmet(
        session, business=business, licence_type=kind, exchange=exchange
    )
    return PrerequisitesOut(licence_type=kind.code, met=not unmet, unmet=unmet)


@router.post("/v1/licence-applications", status_code=201, response_model=LicenceApplicationOut)
async def apply_for_licence(
    body: LicenceApplicationCreate,
    caller: PersonOrActing,
    session: SessionDep,
    settings: SettingsDep,
    identity: IdentityDep,
    exchange: ExchangeDep,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> JSONResponse:
    """Apply for an accreditation licence for a business.

    Access: the business's legal representative or a person acting for it (404 for any other
    business). 409 with `unmet_prerequisites` listing every unmet prerequisite at once; 409
    when the business holds a live licence of the type. Types configured for instant approval
    are issued at once (`status` `approved`, `licence` filled); others wait for an officer.
    `Idempotency-Key` makes a retry return the first answer.
    """

    async def run() -> LicenceApplicationOut:
        application, licence = await service.apply(
            session,
            caller=caller,
            uscc=body.uscc,
            type_code=body.licence_type,
            settings=settings,
            identity=identity,
            exchange=exchange,
        )
        return await views.application_out(session, application, licence)

    return await idempotency.once(
        session,
        caller=caller.sub,
        key=idempotency_key,
        operation="licence-apply",
        payload=body,
        status_code=201,
        run=run,
    )


@router.get("/v1/licence-applications", response_model=LicenceApplicationList)
async def my_licence_applications(
    caller: PersonOrActing, session: SessionDep
) -> LicenceApplicationList:
    """The caller's own licence applications, newest first. Access: a signed-in person."""
    rows = await service.of_applicant(session, applicant=caller.sub)
    return LicenceApplicationList(items=[await views.application_out(session, a) for a in rows])


@router.get("/v1/licence-applications/{application_id}", response_model=LicenceApplicationOut)
async def my_licence_application(
    application_id: uuid.UUID, caller: PersonOrActing, session: SessionDep
) -> LicenceApplicationOut:
    """One licence application with its licence once issued. Access: its applicant only
    (404 for anyone else)."""
    application = await service.mine(session, applicant=caller.sub, application_id=application_id)
    return await views.application_out(session, application)


@router.get("/v1/licences/{number}", response_model=LicenceOut)
async def my_licence(
    number: str, caller: PersonOrActing, session: SessionDep, settings: SettingsDep
) -> LicenceOut:
    """An accreditation licence: its signed document, QR payload, status and history.

    Access: the holder business's legal representative or a person acting for it (404 for
    anyone else; the public verifies at `/v1/licences/verify?number=`).
    """
    licence = await service.licence_for(
        session, number=number, caller=caller, node=settings.node.node_code
    )
    return await views.licence_out(session, licence)


@router.post("/v1/licences/{number}/renew", response_model=LicenceOut)
async def renew_licence(
    number: str,
    caller: PersonOrActing,
    session: SessionDep,
    settings: SettingsDep,
    identity: IdentityDep,
    exchange: ExchangeDep,
) -> LicenceOut:
    """Renew an active licence: a further validity period and a newly signed document (the
    old QR payload then verifies as superseded). Emits `…licence.renewed.v1`.

    Access: the holder (404 otherwise). 409 unless active, or listing unmet prerequisites.
    """
    licence = await service.renew(
        session,
        number=number,
        caller=caller,
        settings=settings,
        identity=identity,
        exchange=exchange,
    )
    return await views.licence_out(session, licence)
