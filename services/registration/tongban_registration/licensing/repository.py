from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.models import AccreditationLicence, LicenceApplication, LicenceHistory

LIVE = ("active", "suspended")


class LicenceHeld(Exception):
    """The business already holds a live licence of this type."""


async def held_types(session: AsyncSession, business_id: uuid.UUID, today: date) -> set[str]:
    rows = await session.scalars(
        select(AccreditationLicence.licence_type).where(
            AccreditationLicence.business_id == business_id,
            AccreditationLicence.status == "active",
            AccreditationLicence.valid_until >= today,
        )
    )
    return set(rows.all())


async def add_application(session: AsyncSession, application: LicenceApplication) -> None:
    session.add(application)
    await session.flush()


async def application(
    session: AsyncSession, application_id: uuid.UUID, *, for_update: bool = False
) -> LicenceApplication | None:
    query = select(LicenceApplication).where(LicenceApplication.id == application_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def applications_of(session: AsyncSession, applicant: str) -> Sequence[LicenceApplication]:
    rows = await session.scalars(
        select(LicenceApplication)
        .where(LicenceApplication.applicant == applicant)
        .order_by(LicenceApplication.created_at.desc())
    )
    return rows.all()


async def applications_in(
    session: AsyncSession, status: str, limit: int
) -> Sequence[LicenceApplication]:
    rows = await session.scalars(
        select(LicenceApplication)
        .where(LicenceApplication.status == status)
        .order_by(LicenceApplication.created_at)
        .limit(limit)
    )
    return rows.all()


async def next_serial(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT nextval('accreditation_licence_serial')")) or 0)


async def add_licence(session: AsyncSession, licence: AccreditationLicence) -> None:
    """Insert; ``LicenceHeld`` when a live licence of the type exists (the index decides)."""
    try:
        async with session.begin_nested():
            session.add(licence)
            await session.flush()
    except IntegrityError as exc:
        if "uq_accreditation_licences_live" in str(exc.orig):
            raise LicenceHeld from exc
        raise


async def by_number(
    session: AsyncSession, number: str, *, for_update: bool = False
) -> AccreditationLicence | None:
    query = select(AccreditationLicence).where(AccreditationLicence.number == number)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def live_of_business(
    session: AsyncSession, business_id: uuid.UUID
) -> Sequence[AccreditationLicence]:
    rows = await session.scalars(
        select(AccreditationLicence)
        .where(AccreditationLicence.business_id == business_id)
        .where(AccreditationLicence.status.in_(LIVE))
        .order_by(AccreditationLicence.number)
        .with_for_update()
    )
    return rows.all()


async def record(session: AsyncSession, step: LicenceHistory) -> None:
    session.add(step)
    await session.flush()


async def history(session: AsyncSession, licence_id: uuid.UUID) -> Sequence[LicenceHistory]:
    rows = await session.scalars(
        select(LicenceHistory)
        .where(LicenceHistory.licence_id == licence_id)
        .order_by(LicenceHistory.id)
    )
    return rows.all()


async def mark_expired(
    session: AsyncSession, licence_id: uuid.UUID, today: date, now: datetime
) -> str | None:
    """Expire a live licence past its validity; its former status, or None when another
    request expired it first (so only one emits the event)."""
    before = await session.scalar(
        select(AccreditationLicence.status)
        .where(AccreditationLicence.id == licence_id)
        .with_for_update()
    )
    changed = await session.execute(
        update(AccreditationLicence)
        .where(
            AccreditationLicence.id == licence_id,
            AccreditationLicence.status.in_(LIVE),
            AccreditationLicence.valid_until < today,
        )
        .values(status="expired", status_changed_at=now)
        .returning(AccreditationLicence.id)
    )
    return before if changed.first() is not None else None
