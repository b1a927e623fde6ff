"""Simplified deregistration (简易注销): a public notice, objections, then an officer completes.

    active ──request (owner)──▶ deregistering ──complete (officer, notice over)──▶ deregistered
                                      └──object (anyone signed in, during the notice)──▶ active

The owner is the person whose application registered the business. An objection ends the
simplified route (the business stays active, the objection on record).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.errors import Conflict, NotFound
from tongban_registration import events
from tongban_registration.applications import repository as applications
from tongban_registration.businesses import repository
from tongban_registration.businesses.service import ACTIVE, canonical_uscc
from tongban_registration.licensing import lifecycle as licensing
from tongban_registration.models import Business

DEREGISTERING, DEREGISTERED = "deregistering", "deregistered"


async def _business(session: AsyncSession, uscc: str) -> Business:
    business = await repository.by_uscc(session, canonical_uscc(uscc), for_update=True)
    if business is None:
        raise NotFound(f"no business with USCC {uscc}")
    return business


def _require(business: Business, status: str, action: str) -> None:
    if business.status != status:
        raise Conflict(
            f"cannot {action} a business that is {business.status}",
            current_status=business.status,
        )


async def request(
    session: AsyncSession, *, uscc: str, owner: str, reason: str, notice_days: int
) -> Business:
    business = await _business(session, uscc)
    if business.owner != owner:
        raise NotFound(f"no business with USCC {uscc} of yours")
    _require(business, ACTIVE, "deregister")
    now = datetime.now(UTC)
    business.status, business.status_changed_at, business.status_reason = (
        DEREGISTERING,
        now,
        reason,
    )
    business.objection_deadline, business.objection = now + timedelta(days=notice_days), None
    return business


async def object_to(session: AsyncSession, *, uscc: str, objection: str) -> Business:
    business = await _business(session, uscc)
    _require(business, DEREGISTERING, "object to the deregistration of")
    now = datetime.now(UTC)
    if business.objection_deadline is not None and now > business.objection_deadline:
        raise Conflict(
            "the notice period is over", objection_deadline=business.objection_deadline.isoformat()
        )
    business.status, business.status_changed_at = ACTIVE, now
    business.status_reason = "simplified deregistration stopped by an objection"
    business.objection = objection
    return business


async def complete(session: AsyncSession, *, uscc: str, officer: str, node: str) -> Business:
    business = await _business(session, uscc)
    _require(business, DEREGISTERING, "complete the deregistration of")
    now = datetime.now(UTC)
    if business.objection_deadline is not None and now < business.objection_deadline:
        raise Conflict(
            "the public notice is still running",
            objection_deadline=business.objection_deadline.isoformat(),
        )
    business.status, business.status_changed_at = DEREGISTERED, now
    await applications.release(session, business.application_id, now)  # the name is free again
    await licensing.revoke_all(
        session,
        business_id=business.id,
        reason="the business was deregistered",
        actor="registration",
        node=node,
    )
    await events.emit(
        session,
        events.BUSINESS_DEREGISTERED,
        node=node,
        subject=business.uscc,
        data={
            "business_id": str(business.id),
            "uscc": business.uscc,
            "route": "simplified",
            "reason": business.status_reason or "",
            "deregistered_at": now.isoformat(),
            "completed_by": officer,
        },
    )
    return business
