"""The business read model, fed by registration's events, applied once each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.models import BusinessRecord
from tongban_kit.events import CloudEvent

BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"

ReadModel = Callable[[AsyncSession, Sequence[CloudEvent]], Awaitable[None]]


async def on_business_registered(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """Upsert the latest record per business, in one statement for a batch of events.

    Called by the routing consumer once the events passed the border (their schema).
    """
    latest: dict[str, CloudEvent] = {}
    for event in events:
        held = latest.get(event.data["uscc"])
        if held is None or held.time <= event.time:
            latest[event.data["uscc"]] = event
    rows = [
        {
            "uscc": event.data["uscc"],
            "name": event.data["name"],
            "division_code": event.data["division_code"],
            "source_event_id": event.id,
            "updated_at": event.time,
        }
        for event in latest.values()
    ]
    table = BusinessRecord.__table__
    statement = insert(table).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["uscc"],
            set_={c: statement.excluded[c] for c in rows[0] if c != "uscc"},
            # never go back to an older record
            where=table.c.updated_at <= statement.excluded.updated_at,
        )
    )


#: Read models kept up to date from the events routing accepts, by event type.
READ_MODELS: dict[str, ReadModel] = {BUSINESS_REGISTERED: on_business_registered}
