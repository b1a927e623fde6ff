"""Accreditation licences, the officers' side: deciding applications; suspending,
reinstating and revoking licences. Access: `registration:licensing`, officers of this node."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from tongban_kit.db import SessionDep
from tongban_registration import idempotency
from tongban_registration.deps import ExchangeDep, IdentityDep, LicensingOfficer, SettingsDep
from tongban_registration.licensing import lifecycle, service, views
from tongban_registration.licensing.schemas import (
    LicenceApplicationList,
    LicenceApplicationOut,
    LicenceDecision,
    LicenceOut,
    StatusChange,
)

router = APIRouter(prefix="/v1/licensing", tags=["accreditation licences"])


@router.get("/applications", response_model=LicenceApplicationList)
async def pending_applications(
    officer: LicensingOfficer,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> LicenceApplicationList:
    """Licence applications waiting for a decision, oldest first.

    Access: licensing officers of this node (`registration:licensing`).
    """
    rows = await service.pending(session, limit=limit)
    return LicenceApplicationList(items=[await views.application_out(session, a) for a in rows])


@router.post("/applications/{application_id}/decision", response_model=LicenceApplicationOut)
async def decide_application(
    application_id: uuid.UUID,
    body: LicenceDecision,
    officer: LicensingOfficer,
    session: SessionDep,
    settings: SettingsDep,
    identity: IdentityDep,
    exchange: ExchangeDep,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> JSONResponse:
    """Approve (the licence is issued, signed by the node) or reject (with a reason).

    Access: licensing officers of this node. Approval re-checks the prerequisites: 409 with
    `unmet_prerequisites` when any fails now. 409 once decided. Emits
    `gov.tongban.registration.licence.issued.v1` on approval. `Idempotency-Key` makes a
    retry return the first answer.
    """

    async def run() -> LicenceApplicationOut:
        application, licence = await service.decide(
            session,
            application_id=application_id,
            approve=body.decision == "approve",
            reason=body.reason,
            officer=officer.sub,
            settings=settings,
            identity=identity,
            exchange=exchange,
        )
        return await views.application_out(session, application, licence)

    return await idempotency.once(
        session,
        caller=officer.sub,
        key=idempotency_key,
        operation=f"licence-decide {application_id}",
        payload=body,
        status_code=200,
        run=run,
    )


@router.post("/licences/{number}/{action}", response_model=LicenceOut)
async def change_licence_status(
    number: str,
    action: Literal["suspend", "reinstate", "revoke"],
    body: StatusChange,
    officer: LicensingOfficer,
    session: SessionDep,
    settings: SettingsDep,
) -> LicenceOut:
    """Suspend an active licence, reinstate a suspended one, or revoke a live one (final).
    Verification shows the new status on the next request; each step is kept in the
    licence's history and emits its event (`…licence.suspended.v1`, `…reinstated.v1`,
    `…revoked.v1`).

    Access: licensing officers of this node. 409 from any other status.
    """
    node = settings.node.node_code
    licence = await service.licence_for(
        session, number=number, caller=None, node=node, for_update=True
    )
    changed = await lifecycle.change_status(
        session, licence=licence, action=action, reason=body.reason, actor=officer.sub, node=node
    )
    return await views.licence_out(session, changed)
