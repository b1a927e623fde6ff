"""The business read model, fed by registration's events, applied once each."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.models import BusinessRecord
from tongban_kit.events import CloudEvent

BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"


async def on_business_registered(session: AsyncSession, event: CloudEvent) -> None:
    # Called by the routing consumer once the event passed the border (its schema).
    values = {
        "uscc": event.data["uscc"],
        "name": event.data["name"],
        "division_code": event.data["division_code"],
        "source_event_id": event.id,
        "updated_at": event.time,
    }
    await session.execute(
        insert(BusinessRecord)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["uscc"],
            set_=values,
            where=BusinessRecord.updated_at <= event.time,  # never go back to an older record
        )
    )


#: Read models kept up to date from the events routing accepts, by event type.
READ_MODELS = {BUSINESS_REGISTERED: on_business_registered}
