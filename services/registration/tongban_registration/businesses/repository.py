from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.models import Acknowledgement, Business


class NameTaken(Exception):
    pass


async def add(session: AsyncSession, business: Business) -> Business:
    """Insert; a name clash surfaces here as NameTaken (the unique constraint decides)."""
    try:
        async with session.begin_nested():
            session.add(business)
            await session.flush()
    except IntegrityError as exc:
        if "uq_businesses_name_key" in str(exc.orig):
            raise NameTaken from exc
        raise
    await session.refresh(business)
    return business


async def by_uscc(session: AsyncSession, uscc: str) -> Business | None:
    return await session.scalar(select(Business).where(Business.uscc == uscc))


async def acknowledgements_of(session: AsyncSession, uscc: str) -> Sequence[Acknowledgement]:
    rows = await session.scalars(
        select(Acknowledgement)
        .where(Acknowledgement.uscc == uscc)
        .order_by(Acknowledgement.recorded_at)
    )
    return rows.all()
