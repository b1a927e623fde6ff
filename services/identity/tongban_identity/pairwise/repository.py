"""All SQL on ``pairwise_subjects``."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.pairwise.models import PairwiseSubject


async def pseudonym_of(
    session: AsyncSession, *, department: str, person_id: uuid.UUID
) -> str | None:
    return await session.scalar(
        select(PairwiseSubject.pseudonym).where(
            PairwiseSubject.department == department, PairwiseSubject.person_id == person_id
        )
    )


async def person_of(session: AsyncSession, *, department: str, pseudonym: str) -> uuid.UUID | None:
    return await session.scalar(
        select(PairwiseSubject.person_id).where(
            PairwiseSubject.department == department, PairwiseSubject.pseudonym == pseudonym
        )
    )


async def keep(
    session: AsyncSession, *, department: str, person_id: uuid.UUID, pseudonym: str
) -> str:
    """Store the pseudonym unless one is stored already (a concurrent caller, or one derived
    under an earlier key); return the stored one."""
    await session.execute(
        insert(PairwiseSubject)
        .values(department=department, person_id=person_id, pseudonym=pseudonym)
        .on_conflict_do_nothing(index_elements=["department", "person_id"])
    )
    stored = await pseudonym_of(session, department=department, person_id=person_id)
    assert stored is not None  # inserted just now, or there already
    return stored
