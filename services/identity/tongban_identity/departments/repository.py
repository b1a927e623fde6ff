"""All SQL on ``department_clients`` and ``client_assertion_jtis``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments.models import ClientAssertionJti, DepartmentClient


class CodeTaken(Exception):
    """An enabled client already exists for this department code."""


class AssertionReplayed(Exception):
    """This client has used this ``jti`` before (and it has not expired)."""


async def add(session: AsyncSession, client: DepartmentClient) -> DepartmentClient:
    """Insert; the partial unique index decides between concurrent enrolments of one code."""
    try:
        async with session.begin_nested():
            session.add(client)
            await session.flush()
    except IntegrityError as exc:
        if "uq_department_clients_code_enabled" in str(exc.orig):
            raise CodeTaken from exc
        raise
    await session.refresh(client)
    return client


async def get(session: AsyncSession, client_id: str) -> DepartmentClient | None:
    return await session.get(DepartmentClient, client_id)


async def list_clients(
    session: AsyncSession, *, include_disabled: bool
) -> Sequence[DepartmentClient]:
    query = select(DepartmentClient).order_by(DepartmentClient.code, DepartmentClient.created_at)
    if not include_disabled:
        query = query.where(DepartmentClient.disabled_at.is_(None))
    return (await session.scalars(query)).all()


async def disable(session: AsyncSession, client_id: str, *, at: datetime) -> None:
    """Disable once; disabling again keeps the first time."""
    await session.execute(
        update(DepartmentClient)
        .where(DepartmentClient.client_id == client_id, DepartmentClient.disabled_at.is_(None))
        .values(disabled_at=at)
    )


async def code_known(session: AsyncSession, code: str) -> bool:
    """Whether any client, enabled or not, was ever enrolled for this department code."""
    found = await session.scalar(select(exists().where(DepartmentClient.code == code)))
    return bool(found)


async def record_assertion(
    session: AsyncSession,
    *,
    client_id: str,
    jti: str,
    expires_at: datetime,
    forget_before: datetime,
) -> None:
    """Remember a used assertion, and forget this client's used ones that expired before
    ``forget_before`` (they could no longer be accepted anyway), in one statement.

    The primary key (client_id, jti) refuses an assertion a second time, also when two
    requests race with it: the later insert waits for the earlier transaction and then does
    nothing, so it returns no row and raises ``AssertionReplayed``.
    """
    forgotten = (
        delete(ClientAssertionJti)
        .where(
            ClientAssertionJti.client_id == client_id,
            ClientAssertionJti.expires_at < forget_before,
        )
        .cte("forgotten")
    )
    recorded = await session.execute(
        insert(ClientAssertionJti)
        .values(client_id=client_id, jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["client_id", "jti"])
        .returning(ClientAssertionJti.jti)
        .add_cte(forgotten)
    )
    if recorded.first() is None:
        raise AssertionReplayed
