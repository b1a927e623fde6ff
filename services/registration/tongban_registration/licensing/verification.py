"""Verifying an accreditation licence by its QR payload or its number, against the register."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.businesses import repository as businesses
from tongban_registration.businesses.schemas import VerificationOut
from tongban_registration.licences.document import attached
from tongban_registration.licensing import lifecycle, repository
from tongban_registration.models import AccreditationLicence


async def _answer(
    session: AsyncSession, licence: AccreditationLicence, *, node: str
) -> VerificationOut:
    licence = await lifecycle.notice_expiry(session, licence, node=node)
    business = await businesses.by_uscc(session, licence.uscc)
    return VerificationOut(
        valid=True,
        kind="accreditation-licence",
        uscc=licence.uscc,
        name=business.name if business is not None else None,
        status=licence.status,
        status_changed_at=licence.status_changed_at,
        licence_number=licence.number,
        licence_type=licence.licence_type,
        licence_name=str(licence.document.get("licence_name", "")),
        valid_from=licence.valid_from,
        valid_until=licence.valid_until,
    )


async def by_payload(
    session: AsyncSession, *, document: dict[str, Any], raw: bytes, compact: str, node: str
) -> VerificationOut:
    """Valid when the payload is the licence's current signed document, unaltered; the
    status is the licence's now (a suspension or revocation shows on the next request)."""
    number = document.get("licence_number")
    licence = await repository.by_number(session, number) if isinstance(number, str) else None
    if licence is None:
        return VerificationOut(valid=False, reason="no licence of this node has this number")
    if document.get("licence_id") != licence.document.get("licence_id"):
        return VerificationOut(
            valid=False, reason="superseded: the licence was renewed; scan its current document"
        )
    if hashlib.sha256(raw).hexdigest() != licence.document_sha256:
        return VerificationOut(valid=False, reason="the licence document was altered")
    if compact != attached(licence.jws, licence.document_sha256):
        return VerificationOut(
            valid=False, reason="the signature is not the node's signature of this licence"
        )
    return await _answer(session, licence, node=node)


async def by_number(session: AsyncSession, *, number: str, node: str) -> VerificationOut:
    licence = await repository.by_number(session, number)
    if licence is None:
        return VerificationOut(valid=False, reason="no licence of this node has this number")
    return await _answer(session, licence, node=node)
