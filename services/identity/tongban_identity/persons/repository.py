from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.models import Person


async def add(session: AsyncSession, person: Person) -> Person:
    session.add(person)
    await session.flush()
    await session.refresh(person)
    return person


async def get(session: AsyncSession, person_id: uuid.UUID) -> Person | None:
    return await session.get(Person, person_id)
