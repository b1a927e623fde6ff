"""Licences and licence applications as responses."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.licences.document import qr_payload
from tongban_registration.licensing import repository
from tongban_registration.licensing.schemas import (
    HistoryOut,
    LicenceApplicationOut,
    LicenceOut,
)
from tongban_registration.models import AccreditationLicence, LicenceApplication


async def licence_out(session: AsyncSession, licence: AccreditationLicence) -> LicenceOut:
    history = await repository.history(session, licence.id)
    return LicenceOut(
        number=licence.number,
        licence_type=licence.licence_type,
        uscc=licence.uscc,
        status=licence.status,
        valid_from=licence.valid_from,
        valid_until=licence.valid_until,
        document=licence.document,
        document_sha256=licence.document_sha256,
        jws=licence.jws,
        qr_payload=qr_payload(licence.document, licence.jws),
        issued_at=licence.issued_at,
        status_changed_at=licence.status_changed_at,
        history=[HistoryOut.model_validate(h) for h in history],
    )


async def application_out(
    session: AsyncSession,
    application: LicenceApplication,
    licence: AccreditationLicence | None = None,
) -> LicenceApplicationOut:
    if licence is None and application.licence_number is not None:
        licence = await repository.by_number(session, application.licence_number)
    out = LicenceApplicationOut.model_validate(application)
    if licence is not None:
        out.licence = await licence_out(session, licence)
    return out
