"""Change filings: a registered business changes its name, address, scope or legal
representative through a reviewed filing; approval updates the register, reissues the licence
and tells the departments (business.changed).

A new name is reserved when the filing is made (the same rule as a new application) and
becomes the business's on approval; the old name is then released. Rejection releases it.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.crypto import FieldCipher
from tongban_kit.errors import Conflict, NotFound
from tongban_registration import events
from tongban_registration.applications import repository as applications
from tongban_registration.applications.schemas import Address, LegalRepresentativeIn
from tongban_registration.applications.service import (
    LEGAL_REP_CONTEXT,
    check_division,
    reserve_name,
)
from tongban_registration.businesses import repository
from tongban_registration.businesses.service import ACTIVE, canonical_uscc
from tongban_registration.identity_client import IdentityClient
from tongban_registration.licences import service as licences
from tongban_registration.models import Business, ChangeFiling

SUBMITTED, APPROVED, REJECTED = "submitted", "approved", "rejected"


async def _owned_business(session: AsyncSession, uscc: str, owner: str) -> Business:
    business = await repository.by_uscc(session, canonical_uscc(uscc))
    if business is None or business.owner != owner:
        raise NotFound(f"no business with USCC {uscc} of yours")
    return business


async def file(
    session: AsyncSession,
    *,
    uscc: str,
    owner: str,
    name: str | None,
    address: Address | None,
    business_scope: str | None,
    legal_representative: LegalRepresentativeIn | None,
    node: str,
    reservation_days: int,
    cipher: FieldCipher,
) -> ChangeFiling:
    business = await _owned_business(session, uscc, owner)
    if business.status != ACTIVE:
        raise Conflict(
            f"a {business.status} business cannot file changes", current_status=business.status
        )
    changes: dict[str, Any] = {}
    filing = ChangeFiling(
        id=uuid.uuid4(),
        business_id=business.id,
        uscc=business.uscc,
        applicant=owner,
        status=SUBMITTED,
    )
    if name is not None and name != business.name:
        reservation = await reserve_name(
            session, application_id=business.application_id, name=name, days=reservation_days
        )
        filing.name_reservation_id = reservation.id
        changes["name"] = name
    if address is not None:
        check_division(address.division_code, node)
        changes["address"] = {"line": address.line, "division_code": address.division_code}
    if business_scope is not None:
        changes["business_scope"] = business_scope
    if legal_representative is not None:
        sealed = cipher.encrypt(legal_representative.resident_id, context=LEGAL_REP_CONTEXT)
        changes["legal_representative"] = {
            "name": legal_representative.name,
            "sealed_resident_id": base64.b64encode(sealed).decode(),
        }
    if not changes:
        raise Conflict("nothing to change: every field equals the register's")
    filing.changes = changes
    try:
        async with session.begin_nested():
            session.add(filing)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("this business already has a change filing under review") from exc
    return filing


async def of_business(session: AsyncSession, *, uscc: str, owner: str) -> Sequence[ChangeFiling]:
    business = await _owned_business(session, uscc, owner)
    rows = await session.scalars(
        select(ChangeFiling)
        .where(ChangeFiling.business_id == business.id)
        .order_by(ChangeFiling.created_at.desc())
    )
    return rows.all()


async def open_filings(session: AsyncSession) -> Sequence[ChangeFiling]:
    rows = await session.scalars(
        select(ChangeFiling)
        .where(ChangeFiling.status == SUBMITTED)
        .order_by(ChangeFiling.created_at)
    )
    return rows.all()


async def decide(
    session: AsyncSession,
    *,
    filing_id: uuid.UUID,
    officer: str,
    approve: bool,
    reason: str | None,
    node: str,
    cipher: FieldCipher,
    identity: IdentityClient | None,
) -> ChangeFiling:
    filing = await session.scalar(
        select(ChangeFiling).where(ChangeFiling.id == filing_id).with_for_update()
    )
    if filing is None:
        raise NotFound(f"no change filing {filing_id}")
    if filing.status != SUBMITTED:
        raise Conflict(f"the filing is already {filing.status}", current_status=filing.status)
    now = datetime.now(UTC)
    filing.decided_by, filing.decided_at, filing.reason = officer, now, reason
    business = await session.scalar(
        select(Business).where(Business.id == filing.business_id).with_for_update()
    )
    assert business is not None
    if not approve:
        filing.status = REJECTED
        if filing.name_reservation_id is not None:
            await applications.release_one(session, filing.name_reservation_id, now)
        return filing
    filing.status = APPROVED
    changes = filing.changes
    data: dict[str, Any] = {"business_id": str(business.id), "uscc": business.uscc}
    if "name" in changes and filing.name_reservation_id is not None:
        await applications.release_others(
            session, business.application_id, filing.name_reservation_id, now
        )
        reservation = await applications.reservation(session, filing.name_reservation_id)
        reservation.expires_at = None  # the new name is held for good
        business.name = data["name"] = changes["name"]
    if "address" in changes:
        business.address = changes["address"]["line"]
        business.division_code = changes["address"]["division_code"]
        data["address"] = changes["address"]
    if "business_scope" in changes:
        business.business_scope = data["business_scope"] = changes["business_scope"]
    if "legal_representative" in changes:
        rep = changes["legal_representative"]
        business.legal_representative_name = rep["name"]
        business.legal_representative_id = base64.b64decode(rep["sealed_resident_id"])
        data["legal_representative"] = {
            "name": rep["name"],
            "resident_id": cipher.decrypt(
                business.legal_representative_id, context=LEGAL_REP_CONTEXT
            ),
        }
    business.status_changed_at = now
    data |= {"changed": sorted(changes), "changed_at": now.isoformat()}
    await session.flush()
    await licences.reissue(session, business=business, identity=identity, node=node)
    await events.emit(session, events.BUSINESS_CHANGED, node=node, subject=business.uscc, data=data)
    return filing
