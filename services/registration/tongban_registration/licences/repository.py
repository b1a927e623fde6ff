from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.models import BusinessLicence


async def of_business(session: AsyncSession, uscc: str) -> BusinessLicence | None:
    return await session.scalar(select(BusinessLicence).where(BusinessLicence.uscc == uscc))


async def add(session: AsyncSession, licence: BusinessLicence) -> bool:
    """Insert; False when a concurrent request issued this business's licence first."""
    try:
        async with session.begin_nested():
            session.add(licence)
            await session.flush()
    except IntegrityError:
        return False
    return True
