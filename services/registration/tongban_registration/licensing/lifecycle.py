"""An accreditation licence's life, each step recorded in its append-only history:

    issued ─▶ active ──suspend──▶ suspended ──reinstate──▶ active
                │  ▲                  │
                │  └──renew (new validity, re-signed)
                ├──revoke (officer; or the business deregistered)──▶ revoked
                └──validity over (noticed on the next read)──▶ expired

Revoked and expired are final; every step except reinstate's way back emits its event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.errors import Conflict, ServiceUnavailable
from tongban_registration import events
from tongban_registration.identity_client import IdentityClient
from tongban_registration.licences.document import digest
from tongban_registration.licensing import repository
from tongban_registration.licensing.document import DOCUMENT_TYPE, accreditation_document
from tongban_registration.licensing.types import LicenceType
from tongban_registration.models import (
    AccreditationLicence,
    Business,
    LicenceApplication,
    LicenceHistory,
)
from tongban_registration.review.clock import office_date

ACTIVE, SUSPENDED, REVOKED, EXPIRED = "active", "suspended", "revoked", "expired"


def _now() -> datetime:
    return datetime.now(UTC)


async def _sign(
    identity: IdentityClient | None, *, document: dict[str, Any], number: str, uscc: str
) -> tuple[str, str]:
    if identity is None:
        raise ServiceUnavailable(
            "this node cannot sign licences yet: registration has no identity service account"
        )
    sha256 = digest(document)
    jws = await identity.sign(
        sha256=sha256,
        document_type=DOCUMENT_TYPE,
        metadata={"uscc": uscc, "licence_number": number},
    )
    return sha256, jws


async def _record(
    session: AsyncSession,
    licence: AccreditationLicence,
    *,
    action: str,
    before: str | None,
    actor: str,
    reason: str | None = None,
) -> None:
    await repository.record(
        session,
        LicenceHistory(
            licence_id=licence.id,
            action=action,
            from_status=before,
            to_status=licence.status,
            actor=actor,
            reason=reason,
            valid_until=licence.valid_until,
        ),
    )


def _event_data(licence: AccreditationLicence, **more: Any) -> dict[str, Any]:
    return {
        "licence_id": str(licence.id),
        "licence_number": licence.number,
        "licence_type": licence.licence_type,
        "uscc": licence.uscc,
        **more,
    }


async def issue(
    session: AsyncSession,
    *,
    application: LicenceApplication,
    business: Business,
    licence_type: LicenceType,
    identity: IdentityClient | None,
    node: str,
    actor: str,
) -> AccreditationLicence:
    """Number, sign and keep the licence; 409 when the business already holds one."""
    now = _now()
    valid_from = office_date(now)
    valid_until = valid_from + timedelta(days=licence_type.validity_days)
    serial = await repository.next_serial(session)
    number = f"{licence_type.number_prefix}{node}{valid_from.year}{serial:08d}"
    licence_id = uuid.uuid4()
    document = accreditation_document(
        licence_id=str(licence_id),
        number=number,
        licence_type=licence_type,
        uscc=business.uscc,
        holder=business.name,
        valid_from=valid_from,
        valid_until=valid_until,
        node=node,
        issued_at=now,
    )
    sha256, jws = await _sign(identity, document=document, number=number, uscc=business.uscc)
    licence = AccreditationLicence(
        id=licence_id,
        number=number,
        business_id=business.id,
        uscc=business.uscc,
        licence_type=licence_type.code,
        application_id=application.id,
        status=ACTIVE,
        valid_from=valid_from,
        valid_until=valid_until,
        document=document,
        document_sha256=sha256,
        jws=jws,
        issued_at=now,
        status_changed_at=now,
    )
    try:
        await repository.add_licence(session, licence)
    except repository.LicenceHeld:
        raise Conflict(
            f"the business already holds a {licence_type.code} licence",
            licence_type=licence_type.code,
        ) from None
    await _record(session, licence, action="issue", before=None, actor=actor)
    await events.emit(
        session,
        events.LICENCE_ISSUED,
        node=node,
        subject=licence.number,
        data=_event_data(
            licence,
            licence_name=licence_type.name,
            business_id=str(business.id),
            valid_from=valid_from.isoformat(),
            valid_until=valid_until.isoformat(),
            issued_at=now.isoformat(),
        ),
    )
    return licence


async def notice_expiry(
    session: AsyncSession, licence: AccreditationLicence, *, node: str
) -> AccreditationLicence:
    """If the licence's validity is over, it is expired from now on (one event, however many
    requests notice it together)."""
    today = office_date(_now())
    if licence.status not in repository.LIVE or licence.valid_until >= today:
        return licence
    now = _now()
    before = await repository.mark_expired(session, licence.id, today, now)
    await session.refresh(licence)
    if before is None:
        return licence
    await _record(session, licence, action="expire", before=before, actor="registration")
    await events.emit(
        session,
        events.LICENCE_EXPIRED,
        node=node,
        subject=licence.number,
        data=_event_data(
            licence, valid_until=licence.valid_until.isoformat(), expired_at=now.isoformat()
        ),
    )
    return licence


def require(licence: AccreditationLicence, allowed: tuple[str, ...], action: str) -> str:
    if licence.status not in allowed:
        raise Conflict(
            f"cannot {action} a licence that is {licence.status}", current_status=licence.status
        )
    return licence.status


async def renew(
    session: AsyncSession,
    *,
    licence: AccreditationLicence,
    business: Business,
    licence_type: LicenceType,
    identity: IdentityClient | None,
    node: str,
    actor: str,
) -> AccreditationLicence:
    """A new validity period from the current one's end, and a newly signed document (the
    old payload then verifies as superseded). Prerequisites are checked by the caller."""
    before = require(licence, (ACTIVE,), "renew")
    now = _now()
    valid_until = licence.valid_until + timedelta(days=licence_type.validity_days)
    document = accreditation_document(
        licence_id=str(uuid.uuid4()),
        number=licence.number,
        licence_type=licence_type,
        uscc=business.uscc,
        holder=business.name,
        valid_from=licence.valid_from,
        valid_until=valid_until,
        node=node,
        issued_at=now,
    )
    sha256, jws = await _sign(
        identity, document=document, number=licence.number, uscc=business.uscc
    )
    licence.valid_until, licence.document, licence.document_sha256, licence.jws = (
        valid_until,
        document,
        sha256,
        jws,
    )
    licence.issued_at = licence.status_changed_at = now
    await _record(session, licence, action="renew", before=before, actor=actor)
    await events.emit(
        session,
        events.LICENCE_RENEWED,
        node=node,
        subject=licence.number,
        data=_event_data(
            licence,
            valid_until=valid_until.isoformat(),
            renewed_at=now.isoformat(),
            renewed_by=actor,
        ),
    )
    return licence


@dataclass(frozen=True)
class _StatusChange:
    allowed: tuple[str, ...]
    to: str
    event: str
    verb: str  # the event's `<verb>_at` and `<verb>_by` fields


STATUS_CHANGES: dict[str, _StatusChange] = {
    "suspend": _StatusChange((ACTIVE,), SUSPENDED, events.LICENCE_SUSPENDED, "suspended"),
    "reinstate": _StatusChange((SUSPENDED,), ACTIVE, events.LICENCE_REINSTATED, "reinstated"),
    "revoke": _StatusChange(repository.LIVE, REVOKED, events.LICENCE_REVOKED, "revoked"),
}


async def change_status(
    session: AsyncSession,
    *,
    licence: AccreditationLicence,
    action: str,
    reason: str,
    actor: str,
    node: str,
) -> AccreditationLicence:
    """``suspend`` an active licence, ``reinstate`` a suspended one or ``revoke`` a live one;
    409 from any other status. Recorded and evented."""
    change = STATUS_CHANGES[action]
    before = require(licence, change.allowed, action)
    now = _now()
    licence.status, licence.status_changed_at = change.to, now
    await _record(session, licence, action=action, before=before, actor=actor, reason=reason)
    await events.emit(
        session,
        change.event,
        node=node,
        subject=licence.number,
        data=_event_data(
            licence,
            reason=reason,
            **{f"{change.verb}_at": now.isoformat(), f"{change.verb}_by": actor},
        ),
    )
    return licence


async def revoke_all(
    session: AsyncSession, *, business_id: uuid.UUID, reason: str, actor: str, node: str
) -> int:
    """Revoke every live licence of a business (it was deregistered); how many."""
    live = await repository.live_of_business(session, business_id)
    for licence in live:
        await change_status(
            session, licence=licence, action="revoke", reason=reason, actor=actor, node=node
        )
    return len(live)
