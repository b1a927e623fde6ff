"""All of the applications' SQL: the applications, their history and their names."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.applications.states import PENDING, Status
from tongban_registration.models import Application, NameReservation, Transition

_LIVE_NAME_INDEX = "uq_name_reservations_live_name_key"


class NameHeld(Exception):
    """The live-name index refused a reservation."""


async def add(session: AsyncSession, application: Application) -> Application:
    session.add(application)
    await session.flush()
    return application


async def get(
    session: AsyncSession, application_id: uuid.UUID, *, for_update: bool = False
) -> Application | None:
    query = select(Application).where(Application.id == application_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def of_applicant(session: AsyncSession, applicant: str) -> Sequence[Application]:
    rows = await session.scalars(
        select(Application)
        .where(Application.applicant == applicant)
        .order_by(Application.created_at.desc())
        .limit(200)
    )
    return rows.all()


async def queue(
    session: AsyncSession, statuses: Sequence[Status], *, overdue_on: date | None = None
) -> Sequence[Application]:
    query = select(Application).where(Application.status.in_([s.value for s in statuses]))
    if overdue_on is not None:
        query = query.where(Application.due_on < overdue_on)
    rows = await session.scalars(
        query.order_by(Application.due_on, Application.submitted_at).limit(500)
    )
    return rows.all()


async def count_overdue(session: AsyncSession, today: date) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Application)
            .where(Application.status.in_([s.value for s in PENDING]), Application.due_on < today)
        )
        or 0
    )


async def record(session: AsyncSession, transition: Transition) -> None:
    session.add(transition)
    await session.flush()


async def history(session: AsyncSession, application_id: uuid.UUID) -> Sequence[Transition]:
    rows = await session.scalars(
        select(Transition)
        .where(Transition.application_id == application_id)
        .order_by(Transition.id)
    )
    return rows.all()


# --- names --------------------------------------------------------------------------------


async def reserve(session: AsyncSession, reservation: NameReservation) -> None:
    """Insert a reservation; ``NameHeld`` when a live one holds the name (the index decides)."""
    try:
        async with session.begin_nested():
            session.add(reservation)
            await session.flush()
    except IntegrityError as exc:
        if _LIVE_NAME_INDEX in str(exc.orig):
            raise NameHeld from exc
        raise


async def release_lapsed(session: AsyncSession, name_key: str, now: datetime) -> bool:
    """Release a lapsed reservation of this name (one that was never renewed or made permanent)."""
    result = await session.execute(
        update(NameReservation)
        .where(
            NameReservation.name_key == name_key,
            NameReservation.released_at.is_(None),
            NameReservation.expires_at < now,
        )
        .values(released_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def holder(session: AsyncSession, name_key: str) -> NameReservation | None:
    return await session.scalar(
        select(NameReservation).where(
            NameReservation.name_key == name_key, NameReservation.released_at.is_(None)
        )
    )


async def live_reservation(
    session: AsyncSession, application_id: uuid.UUID
) -> NameReservation | None:
    return await session.scalar(
        select(NameReservation).where(
            NameReservation.application_id == application_id,
            NameReservation.released_at.is_(None),
        )
    )


async def release(session: AsyncSession, application_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(NameReservation)
        .where(
            NameReservation.application_id == application_id,
            NameReservation.released_at.is_(None),
        )
        .values(released_at=now)
    )
