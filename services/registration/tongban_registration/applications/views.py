"""An application as its applicant or an officer sees it: personal identifiers masked."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.crypto import FieldCipher
from tongban_kit.identifiers import mask_resident_id
from tongban_registration.applications import repository
from tongban_registration.applications.entity_types import EntityType
from tongban_registration.applications.schemas import (
    AcknowledgementOut,
    Address,
    ApplicationOut,
    Capital,
    Investor,
    LegalRepresentativeOut,
    Problem,
    TransitionOut,
)
from tongban_registration.applications.service import (
    LEGAL_REP_CONTEXT,
    digest_of,
    signed_content,
)
from tongban_registration.applications.states import Status, allowed_actions
from tongban_registration.businesses import repository as businesses
from tongban_registration.models import Application


async def _digest(session: AsyncSession, application: Application, cipher: FieldCipher) -> str:
    """While the applicant may still change it, the digest of the content as it is now (what
    to sign before submitting, uploaded documents included); afterwards, the digest that was
    submitted."""
    if application.document_sha256 and Status(application.status) not in (
        Status.DRAFT,
        Status.RETURNED,
    ):
        return application.document_sha256
    return digest_of(await signed_content(session, application, cipher))


async def application_out(
    session: AsyncSession,
    application: Application,
    *,
    cipher: FieldCipher,
    officer: bool = False,
    full: bool = True,
) -> ApplicationOut:
    """``full`` adds the history and the departments' acknowledgements (a single read)."""
    reservation = await repository.live_reservation(session, application.id)
    resident_id = cipher.decrypt(application.legal_representative_id, context=LEGAL_REP_CONTEXT)
    out = ApplicationOut(
        id=application.id,
        status=application.status,
        allowed_actions=allowed_actions(Status(application.status), officer=officer),
        name=application.name,
        entity_type=EntityType(application.entity_type),
        registered_capital=Capital(amount=application.registered_capital),
        address=Address(line=application.address, division_code=application.division_code),
        business_scope=application.business_scope,
        legal_representative=LegalRepresentativeOut(
            name=application.legal_representative_name,
            resident_id_masked=mask_resident_id(resident_id),
        ),
        investors=[
            Investor(name=i["name"], kind=i["kind"], share=Decimal(i["share"]))
            for i in application.investors
        ],
        name_reserved_until=reservation.expires_at if reservation else None,
        document_sha256=await _digest(session, application, cipher),
        signature=application.signature,
        signature_kid=application.signature_kid,
        submitted_at=application.submitted_at,
        due_on=application.due_on,
        decided_at=application.decided_at,
        problems=[Problem(**p) for p in application.problems] if application.problems else None,
        uscc=application.uscc,
        created_at=application.created_at,
    )
    if full:
        out.history = [
            TransitionOut.model_validate(t)
            for t in await repository.history(session, application.id)
        ]
        if application.uscc:
            out.acknowledgements = [
                AcknowledgementOut.model_validate(a)
                for a in await businesses.acknowledgements_of(session, application.uscc)
            ]
    return out
