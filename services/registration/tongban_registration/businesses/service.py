"""The register: businesses entered on approval, their USCC, and what the public may see."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.crypto import FieldCipher
from tongban_kit.errors import Conflict, NotFound
from tongban_kit.identifiers import InvalidIdentifier, generate_uscc, validate_uscc
from tongban_registration import events
from tongban_registration.applications.entity_types import (
    MARKET_REGULATION_AUTHORITY,
    USCC_CATEGORY,
    EntityType,
)
from tongban_registration.applications.schemas import AcknowledgementOut, Address, Capital
from tongban_registration.applications.service import LEGAL_REP_CONTEXT
from tongban_registration.businesses import repository
from tongban_registration.businesses.schemas import BusinessOut
from tongban_registration.licensing import lifecycle as licensing
from tongban_registration.models import Acknowledgement, Application, Business

ACTIVE, REVOKED = "active", "revoked"
#: Organisation-code bodies are 8 characters of the 31-letter USCC alphabet.
_SERIALS = 31**8 - 1
_USCC_ATTEMPTS = 8


def issue_uscc(*, node: str, entity_type: EntityType) -> str:
    """A fresh GB 32100 code: market regulation (9), the entity's category, the node's division,
    a random organisation code with its GB 11714 check character, the final check character."""
    return generate_uscc(
        division_code=node,
        registration_authority=MARKET_REGULATION_AUTHORITY,
        category=USCC_CATEGORY[entity_type],
        serial=secrets.randbelow(_SERIALS) + 1,
    )


async def register(
    session: AsyncSession, *, application: Application, node: str, cipher: FieldCipher
) -> Business:
    """Enter an approved application in the register under a new USCC and tell the departments."""
    now = datetime.now(UTC)
    for _ in range(_USCC_ATTEMPTS):
        business = Business(
            uscc=issue_uscc(node=node, entity_type=EntityType(application.entity_type)),
            application_id=application.id,
            owner=application.applicant,
            status=ACTIVE,
            name=application.name,
            entity_type=application.entity_type,
            registered_capital=application.registered_capital,
            address=application.address,
            division_code=application.division_code,
            business_scope=application.business_scope,
            legal_representative_name=application.legal_representative_name,
            legal_representative_id=application.legal_representative_id,
            investors=application.investors,
            registered_at=now,
        )
        try:
            await repository.add(session, business)
            break
        except repository.UsccTaken:
            continue
    else:  # 8 collisions in 31^8 would mean the generator is broken, not bad luck
        raise RuntimeError("could not draw a free USCC")
    await events.emit(
        session,
        events.BUSINESS_REGISTERED,
        node=node,
        subject=business.uscc,
        data={
            "business_id": str(business.id),
            "uscc": business.uscc,
            "name": business.name,
            "entity_type": business.entity_type,
            "registered_capital": {"amount": str(business.registered_capital), "currency": "CNY"},
            "address": {"line": business.address, "division_code": business.division_code},
            "division_code": business.division_code,
            "business_scope": business.business_scope,
            "legal_representative": {
                "name": business.legal_representative_name,
                "resident_id": cipher.decrypt(
                    business.legal_representative_id, context=LEGAL_REP_CONTEXT
                ),
            },
            "investors": business.investors,
            "registered_at": now.isoformat(),
        },
    )
    return business


def canonical_uscc(uscc: str) -> str:
    """The USCC named in a path, canonical; a string that is no USCC names no business (404)."""
    try:
        return validate_uscc(uscc)
    except InvalidIdentifier as exc:
        raise NotFound(f"no business with that USCC ({exc.reason})") from exc


async def get(session: AsyncSession, *, uscc: str) -> tuple[Business, Sequence[Acknowledgement]]:
    business = await repository.by_uscc(session, canonical_uscc(uscc))
    if business is None:
        raise NotFound(f"no business with USCC {uscc}")
    return business, await repository.acknowledgements_of(session, business.uscc)


async def search(session: AsyncSession, *, text: str, limit: int) -> Sequence[Business]:
    return await repository.search(session, text.strip(), limit)


async def revoke(
    session: AsyncSession, *, uscc: str, reason: str, officer: str, node: str
) -> Business:
    """Revoke a business's licence (吊销): the register and every verification show it at once."""
    business = await repository.by_uscc(session, canonical_uscc(uscc), for_update=True)
    if business is None:
        raise NotFound(f"no business with USCC {uscc}")
    if business.status != ACTIVE:
        raise Conflict(f"the business is already {business.status}", current_status=business.status)
    now = datetime.now(UTC)
    business.status, business.status_changed_at, business.status_reason = REVOKED, now, reason
    await events.emit(
        session,
        events.BUSINESS_REVOKED,
        node=node,
        subject=business.uscc,
        data={
            "business_id": str(business.id),
            "uscc": business.uscc,
            "reason": reason,
            "revoked_at": now.isoformat(),
            "revoked_by": officer,
        },
    )
    # Accreditation licences presuppose a licensed business: they go with it.
    await licensing.revoke_all(
        session,
        business_id=business.id,
        reason=f"the business licence was revoked: {reason}"[:2000],
        actor=officer,
        node=node,
    )
    return business


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***: the family name stays, the rest is hidden."""
    return name[:1] + "*" * max(len(name) - 1, 1)


def public_view(business: Business, *, acknowledgements: Sequence[Acknowledgement]) -> BusinessOut:
    return BusinessOut(
        uscc=business.uscc,
        name=business.name,
        entity_type=business.entity_type,
        status=business.status,
        status_changed_at=business.status_changed_at,
        status_reason=business.status_reason,
        objection_deadline=business.objection_deadline,
        registered_capital=Capital(amount=business.registered_capital),
        address=Address(line=business.address, division_code=business.division_code),
        business_scope=business.business_scope,
        legal_representative=mask_name(business.legal_representative_name),
        registered_at=business.registered_at,
        acknowledgements=[AcknowledgementOut.model_validate(a) for a in acknowledgements],
    )
