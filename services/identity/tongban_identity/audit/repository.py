"""All SQL on ``audit_events``: insert, and nothing else (the database refuses the rest)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.audit.models import AuditEvent


async def append(session: AsyncSession, event: AuditEvent) -> AuditEvent:
    session.add(event)
    await session.flush()
    return event
