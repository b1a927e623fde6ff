"""The events registration publishes (one JSON Schema each in the kit's catalogue)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.events import CloudEvent
from tongban_kit.outbox import add_event

APPLICATION_SUBMITTED = "gov.tongban.registration.application.submitted.v1"
APPLICATION_APPROVED = "gov.tongban.registration.application.approved.v1"
APPLICATION_REJECTED = "gov.tongban.registration.application.rejected.v1"
APPLICATION_RETURNED = "gov.tongban.registration.application.returned.v1"
BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"
BUSINESS_REVOKED = "gov.tongban.registration.business.revoked.v1"
BUSINESS_CHANGED = "gov.tongban.registration.business.changed.v1"
BUSINESS_DEREGISTERED = "gov.tongban.registration.business.deregistered.v1"
LICENCE_ISSUED = "gov.tongban.registration.licence.issued.v1"
LICENCE_RENEWED = "gov.tongban.registration.licence.renewed.v1"
LICENCE_SUSPENDED = "gov.tongban.registration.licence.suspended.v1"
LICENCE_REINSTATED = "gov.tongban.registration.licence.reinstated.v1"
LICENCE_REVOKED = "gov.tongban.registration.licence.revoked.v1"
LICENCE_EXPIRED = "gov.tongban.registration.licence.expired.v1"


async def emit(
    session: AsyncSession, type_: str, *, node: str, subject: str, data: dict[str, Any]
) -> None:
    """Write an event in the request's transaction; the relay publishes it after commit."""
    await add_event(
        session,
        CloudEvent.new(type_, source=f"/nodes/{node}/registration", subject=subject, data=data),
    )
