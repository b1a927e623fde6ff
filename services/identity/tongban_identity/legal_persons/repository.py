"""All SQL on ``legal_persons`` and ``delegations``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.legal_persons.models import Delegation
from tongban_identity.models import LegalPerson


async def upsert_legal_person(session: AsyncSession, values: Mapping[str, Any]) -> None:
    await session.execute(
        insert(LegalPerson)
        .values(**values)
        .on_conflict_do_update(index_elements=["uscc"], set_=dict(values))
    )


async def end_delegations_except(
    session: AsyncSession, *, uscc: str, source: str, keep_index: str | None, at: datetime
) -> None:
    """End the business's current delegations of ``source``, but for ``keep_index``'s."""
    query = update(Delegation).where(
        Delegation.uscc == uscc, Delegation.source == source, Delegation.ended_at.is_(None)
    )
    if keep_index is not None:
        query = query.where(Delegation.person_index != keep_index)
    await session.execute(query.values(ended_at=at))


async def add_delegation(
    session: AsyncSession, *, uscc: str, person_index: str, source: str, at: datetime
) -> None:
    """Record a current delegation, unless the same one is current already."""
    await session.execute(
        insert(Delegation)
        .values(uscc=uscc, person_index=person_index, source=source, recorded_at=at)
        .on_conflict_do_nothing(
            index_elements=["uscc", "person_index", "source"],
            index_where=text("ended_at IS NULL"),
        )
    )


async def current_delegations(
    session: AsyncSession, *, person_index: str, uscc: str | None = None
) -> Sequence[tuple[Delegation, LegalPerson]]:
    """The person's current delegations with their businesses, by USCC."""
    query = (
        select(Delegation, LegalPerson)
        .join(LegalPerson, LegalPerson.uscc == Delegation.uscc)
        .where(Delegation.person_index == person_index, Delegation.ended_at.is_(None))
        .order_by(Delegation.uscc, Delegation.source)
    )
    if uscc is not None:
        query = query.where(Delegation.uscc == uscc)
    return [(row[0], row[1]) for row in await session.execute(query)]
