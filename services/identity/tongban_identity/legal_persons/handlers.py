"""Legal persons come from registration's events, applied once each through the inbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.models import LegalPerson
from tongban_kit.events import CloudEvent
from tongban_kit.inbox import Subscription

BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"


async def on_business_registered(session: AsyncSession, event: CloudEvent) -> None:
    data = event.data
    values = {
        "uscc": data["uscc"],
        "name": data["name"],
        "division_code": data["division_code"],
        "registered_at": datetime.fromisoformat(data["registered_at"]),
    }
    await session.execute(
        insert(LegalPerson)
        .values(**values)
        .on_conflict_do_update(index_elements=["uscc"], set_=values)
    )


SUBSCRIPTION = Subscription(
    name="legal-persons",
    topics=("registration.events",),
    handlers={BUSINESS_REGISTERED: on_business_registered},
)
