"""Add an event to the outbox inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.events.envelope import CloudEvent
from tongban_kit.outbox.tables import NOTIFY_CHANNEL, outbox

__all__ = ["add_event"]


async def add_event(session: AsyncSession, event: CloudEvent) -> None:
    """Write ``event`` in the session's transaction: it is published if and only if it commits.

    The NOTIFY is transactional too: PostgreSQL delivers it on commit, which wakes the relay.
    """
    record = event.to_kafka()
    await session.execute(
        insert(outbox).values(
            event_id=event.id,
            event_type=event.type,
            topic=record.topic,
            key=record.key,
            headers={name: value.decode() for name, value in record.headers},
            payload=record.value,
        )
    )
    await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))
