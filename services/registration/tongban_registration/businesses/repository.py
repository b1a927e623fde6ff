from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.models import Acknowledgement, Business


class UsccTaken(Exception):
    pass


async def add(session: AsyncSession, business: Business) -> None:
    """Insert; a USCC already in the register surfaces as UsccTaken (the unique index decides)."""
    try:
        async with session.begin_nested():
            session.add(business)
            await session.flush()
    except IntegrityError as exc:
        if "uq_businesses_uscc" in str(exc.orig):
            raise UsccTaken from exc
        raise


async def by_uscc(session: AsyncSession, uscc: str, *, for_update: bool = False) -> Business | None:
    query = select(Business).where(Business.uscc == uscc)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def search(session: AsyncSession, text: str, limit: int) -> Sequence[Business]:
    # Escape LIKE wildcards: a search for "100%" means the characters, not a pattern.
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await session.scalars(
        select(Business)
        .where(or_(Business.uscc == text.upper(), Business.name.ilike(pattern, escape="\\")))
        .order_by(Business.name)
        .limit(limit)
    )
    return rows.all()


async def acknowledgements_of(session: AsyncSession, uscc: str) -> Sequence[Acknowledgement]:
    rows = await session.scalars(
        select(Acknowledgement)
        .where(Acknowledgement.uscc == uscc)
        .order_by(Acknowledgement.recorded_at)
    )
    return rows.all()
