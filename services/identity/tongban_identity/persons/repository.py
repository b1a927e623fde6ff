from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.models import Person


class ResidentIdTaken(Exception):
    pass


async def add(session: AsyncSession, person: Person) -> Person:
    """Insert; a second sign-up with one ID number surfaces as ResidentIdTaken (the unique
    blind index decides, so two concurrent sign-ups cannot both win)."""
    try:
        async with session.begin_nested():
            session.add(person)
            await session.flush()
    except IntegrityError as exc:
        if "uq_persons_resident_id_index" in str(exc.orig):
            raise ResidentIdTaken from exc
        raise
    await session.refresh(person)
    return person


async def get(session: AsyncSession, person_id: uuid.UUID) -> Person | None:
    return await session.get(Person, person_id)


async def by_resident_index(session: AsyncSession, resident_id_index: str) -> Person | None:
    return await session.scalar(select(Person).where(Person.resident_id_index == resident_id_index))
